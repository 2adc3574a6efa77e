//! The CUDA kernel sources (`kernels/*.cu`, embedded in the binary), the names each defines, and
//! the NVRTC options they are compiled with.

/// One source file and the `extern "C" __global__` kernels it defines. The files are named like
/// the CPU backend's modules (`kernels/pool.cu` ↔ `src/backend/cpu/pool.rs`).
pub struct KernelFile {
    pub file: &'static str,
    /// The file as written, with its `#include` lines.
    pub text: &'static str,
    pub kernels: &'static [&'static str],
}

macro_rules! kernel_file {
    ($name:literal, [$($kernel:literal),* $(,)?]) => {
        KernelFile {
            file: concat!("kernels/", $name, ".cu"),
            text: include_str!(concat!("../../../kernels/", $name, ".cu")),
            kernels: &[$($kernel),*],
        }
    };
}

/// Threads per block of every launch: `BLOCK` in kernels/common.cuh, where the one-block-per-output
/// kernels size their shared-memory trees by it.
pub const BLOCK: u32 = 256;

/// What every kernel file includes (`BLOCK`, `GRID_STRIDE`, `Geom`).
pub const COMMON_HEADER: &str = include_str!("../../../kernels/common.cuh");

pub const FILES: &[KernelFile] = &[
    kernel_file!("unary", ["unary_fwd", "unary_bwd", "fill"]),
    kernel_file!("binary", ["binary_fwd", "binary_same"]),
    kernel_file!(
        "reduce",
        ["reduce_thread", "reduce_block", "max_bwd", "expand_axis"]
    ),
    kernel_file!("softmax", ["softmax_fwd", "softmax_bwd"]),
    kernel_file!("loss", ["cross_entropy_fwd", "cross_entropy_bwd"]),
    kernel_file!("conv", ["im2col", "col2im"]),
    kernel_file!(
        "pool",
        [
            "pool2d_fwd",
            "max_pool2d_fwd",
            "max_pool2d_bwd",
            "avg_pool2d_bwd"
        ]
    ),
    kernel_file!(
        "layout",
        [
            "permute",
            "slice_axis",
            "pad_axis",
            "cat_part",
            "gather_rows",
            "scatter_add_rows"
        ]
    ),
    kernel_file!(
        "optim",
        ["sgd_update", "sgd_momentum_update", "adam_update"]
    ),
    kernel_file!("random", ["dropout_mask"]),
    kernel_file!(
        "bias",
        ["bias_relu_fwd", "bias_relu_bwd_dx", "bias_relu_bwd_bias"]
    ),
];

/// NVRTC options for `arch` (`compute_90` at run time: PTX the driver finishes for the card in
/// hand; `sm_90` in the compile test, so ptxas checks register and shared-memory limits too).
/// Contraction into fused multiply-adds is off so elementwise results match the CPU's, which
/// never fuses; these kernels are memory-bound, so it costs nothing measurable.
pub fn compile_options(arch: &str) -> Vec<String> {
    vec![
        format!("--gpu-architecture={arch}"),
        "--fmad=false".into(),
        "--std=c++17".into(),
    ]
}

impl KernelFile {
    /// The complete source NVRTC compiles: each `#include "common.cuh"` line replaced by that
    /// header's text (NVRTC reads no files at run time, so the binary runs from anywhere), then a
    /// `#line` directive so the compiler's messages cite the file's own line numbers.
    pub fn source(&self) -> String {
        let mut out = String::new();
        for (i, line) in self.text.lines().enumerate() {
            let header = match line.trim() {
                "#include \"common.cuh\"" => Some(("kernels/common.cuh", COMMON_HEADER)),
                _ => None,
            };
            match header {
                Some((name, text)) => {
                    out.push_str(&format!("#line 1 \"{name}\"\n{text}"));
                    if !text.ends_with('\n') {
                        out.push('\n');
                    }
                    out.push_str(&format!("#line {} \"{}\"\n", i + 2, self.file));
                }
                None => {
                    out.push_str(line);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// The `extern "C" __global__` function names defined in a source, in order.
pub fn declared_kernels(source: &str) -> Vec<String> {
    source
        .split("extern \"C\" __global__ void ")
        .skip(1)
        .filter_map(|rest| rest.split('(').next())
        .map(|name| name.trim().to_string())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_table_matches_the_sources() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| format!("kernels/{}", e.unwrap().file_name().to_string_lossy()))
            .filter(|f| f.ends_with(".cu"))
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FILES.iter().map(|f| f.file.to_string()).collect();
        listed.sort();
        assert_eq!(listed, on_disk, "every kernels/*.cu file is in the table");
        for f in FILES {
            assert_eq!(
                declared_kernels(f.text),
                f.kernels,
                "{}: the table lists the file's kernels in order",
                f.file
            );
        }
    }

    #[test]
    fn the_block_size_is_the_same_on_both_sides() {
        assert!(
            COMMON_HEADER.contains(&format!("\n#define BLOCK {BLOCK}\n")),
            "kernels/common.cuh defines BLOCK as src/backend/cuda/kernels.rs does ({BLOCK})"
        );
    }

    #[test]
    fn declared_kernels_reads_names() {
        let src = "extern \"C\" __global__ void a(int x) {}\n__device__ void b() {}\nextern \"C\" __global__ void c (float* y) {}";
        assert_eq!(declared_kernels(src), ["a", "c"]);
    }
}
