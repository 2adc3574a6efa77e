//! Hot elementwise loops compiled for the widest vector unit the CPU has, chosen at run time:
//! the binary itself targets baseline x86-64 (SSE2, 4 lanes), so it runs on any x86-64
//! machine, while AVX-512 machines compute 16 lanes at a time. The loops use plain multiplies
//! and adds (never fused), so every width gives the same bits.

/// `widest!(fn name(args) -> ret = inner)` (the return type optional) defines `name`, which calls `inner` (an `#[inline(always)]`
/// function, so it is compiled again inside each wrapper) built for AVX-512 or AVX2 where the
/// CPU has them, else for the baseline.
macro_rules! widest {
    ($vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? = $inner:path) => {
        #[allow(clippy::too_many_arguments)]
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    $inner($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $inner($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $inner($($arg),*)
        }
    };
}
pub(crate) use widest;

/// `body` (an elementwise loop, inlined) compiled for the widest vector unit the CPU has. The
/// loops behind `map1`/`map2` went through rayon's iterator adapters in baseline SSE2 code:
/// ReLU's backward took 3.4x its forward's time on a [64, 16, 28, 28] batch.
#[inline(always)]
pub(crate) fn widest_loop(body: impl FnOnce()) {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512(body: impl FnOnce()) {
            body()
        }
        #[target_feature(enable = "avx2")]
        fn avx2(body: impl FnOnce()) {
            body()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { avx512(body) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { avx2(body) };
        }
    }
    body()
}
