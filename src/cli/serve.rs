//! `kiln serve`

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::serve::{self, Batching, Options, Served};

/// Serve trained models over TensorFlow Serving's REST API (and a page at /).
#[derive(clap::Args)]
pub struct Args {
    /// Runs (or checkpoints) to serve, each as RUN (named by the run's `name`) or NAME=RUN.
    #[arg(required = true, value_name = "[NAME=]RUN")]
    runs: Vec<String>,
    /// An address or a host name (`localhost`).
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// 0 picks a free port (printed on stderr).
    #[arg(long, default_value_t = 8501)]
    port: u16,
    #[arg(long, default_value = "auto")]
    device: String,
    /// CPU threads for the models (default: every core).
    #[arg(long, value_parser = super::positive)]
    pub threads: Option<usize>,
    /// The most rows one forward pass takes from waiting requests.
    #[arg(long, default_value_t = 64, value_parser = super::positive)]
    max_batch_size: usize,
    /// How long a batch waits for requests still being read (never for a lone request).
    #[arg(long, default_value_t = 1000)]
    batch_timeout_micros: u64,
    /// The largest request body, in bytes (413 above).
    #[arg(long, default_value_t = 16 << 20, value_parser = super::positive)]
    max_body: usize,
}

pub fn exec(a: Args) -> Result<()> {
    let device = super::select_device(&a.device)?;
    device.warn_if_fell_back();
    let mut served: Vec<Served> = Vec::new();
    for spec in &a.runs {
        // A path that exists is a run even with '=' in it.
        let named = !PathBuf::from(spec).exists();
        let (name, path) = match spec.split_once('=') {
            Some(("", _)) if named => {
                return Err(Error::Usage(format!(
                    "{spec}: an empty model name; write NAME=RUN"
                )))
            }
            Some((n, p)) if named => (Some(n.to_string()), PathBuf::from(p)),
            _ => (None, PathBuf::from(spec)),
        };
        let trained = super::open_trained(&path)?;
        let (model, loss) = trained.model(device.device)?;
        let name = name.unwrap_or_else(|| trained.info.name.clone());
        if let Some(bad) = name
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || "-_.".contains(*c)))
        {
            return Err(Error::Usage(format!(
                "{spec}: the model name \"{name}\" has '{bad}'; use ASCII letters, digits, '-', '_' and '.' (NAME=RUN names it)"
            )));
        }
        if served.iter().any(|s| s.name == name) {
            return Err(Error::Usage(format!(
                "two models named \"{name}\": name them apart with NAME=RUN"
            )));
        }
        eprintln!(
            "model {name}: {} ({} parameters)",
            path.display(),
            model.num_params()
        );
        served.push(Served {
            name,
            run: path.display().to_string(),
            model,
            loss,
            schema: trained.info.schema.clone(),
        });
    }
    let names: Vec<String> = served.iter().map(|s| s.name.clone()).collect();
    let addr = match a.host.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, a.port),
        Err(_) => (a.host.as_str(), a.port)
            .to_socket_addrs()
            .ok()
            .and_then(|mut addrs| addrs.next())
            .ok_or_else(|| {
                Error::Usage(format!(
                    "--host {}: neither an IP address nor a name this machine resolves",
                    a.host
                ))
            })?,
    };
    let opts = Options {
        addr,
        batching: Batching {
            max_batch: a.max_batch_size,
            timeout: Duration::from_micros(a.batch_timeout_micros),
        },
        max_body: a.max_body,
    };
    serve::serve(served, opts, |addr| {
        for n in &names {
            eprintln!("serving {n} at http://{addr}/v1/models/{n}");
        }
        eprintln!("listening on http://{addr}/");
    })
}
