//! Dynamic batching: one thread per model takes the requests that are waiting (up to
//! `max_batch` rows) and runs them through the model as one batch. It waits up to `timeout` for
//! more only while a request is still being parsed, so a lone request never waits and a
//! burst shares one forward pass.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::data::DataSchema;
use crate::loss::Loss;
use crate::nn::Model;
use crate::tensor::Tensor;

/// Outputs per row (probabilities or values), or why the batch failed.
pub type Answer = Result<Vec<f32>, String>;

struct Job {
    x: Vec<f32>,
    n: usize,
    reply: oneshot::Sender<Answer>,
}

pub struct Batcher {
    tx: mpsc::Sender<Job>,
    /// Requests announced (being parsed or queued) that no batch has taken yet.
    pending: Arc<AtomicUsize>,
    /// Values per row of an answer.
    pub k: usize,
}

/// A request on its way to the batcher: counted as pending until it is queued or dropped.
pub struct Ticket {
    pending: Arc<AtomicUsize>,
    queued: bool,
}

impl Drop for Ticket {
    fn drop(&mut self) {
        if !self.queued {
            self.pending.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

/// How the batcher sizes batches.
#[derive(Clone, Copy, Debug)]
pub struct Batching {
    pub max_batch: usize,
    pub timeout: Duration,
}

impl Batcher {
    pub fn spawn(name: &str, model: Model, loss: Loss, schema: DataSchema, b: Batching) -> Batcher {
        let (tx, rx) = mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let k = loss.prediction_width(model.output_shape().numel());
        let counter = pending.clone();
        std::thread::Builder::new()
            .name(format!("batcher-{name}"))
            .spawn(move || run(rx, &counter, &model, loss, &schema, b))
            .expect("a thread starts");
        Batcher { tx, pending, k }
    }

    /// Count a request as coming (call before parsing it).
    pub fn ticket(&self) -> Ticket {
        self.pending.fetch_add(1, Ordering::SeqCst);
        Ticket {
            pending: self.pending.clone(),
            queued: false,
        }
    }

    /// Run `n` rows `x` in the next batch.
    pub async fn predict(&self, mut ticket: Ticket, x: Vec<f32>, n: usize) -> Answer {
        let (reply, answer) = oneshot::channel();
        if self.tx.send(Job { x, n, reply }).is_err() {
            return Err("the model's batcher stopped".into());
        }
        ticket.queued = true; // the batcher counts it off when it takes it
        answer
            .await
            .unwrap_or_else(|_| Err("the model's batcher stopped".into()))
    }
}

fn run(
    rx: mpsc::Receiver<Job>,
    pending: &AtomicUsize,
    model: &Model,
    loss: Loss,
    schema: &DataSchema,
    b: Batching,
) {
    let take = |job: Job, jobs: &mut Vec<Job>, rows: &mut usize| {
        pending.fetch_sub(1, Ordering::SeqCst);
        *rows += job.n;
        jobs.push(job);
    };
    while let Ok(first) = rx.recv() {
        let (mut jobs, mut rows) = (Vec::new(), 0);
        take(first, &mut jobs, &mut rows);
        let deadline = Instant::now() + b.timeout;
        while rows < b.max_batch {
            if let Ok(job) = rx.try_recv() {
                take(job, &mut jobs, &mut rows);
                continue;
            }
            let now = Instant::now();
            if pending.load(Ordering::SeqCst) == 0 || now >= deadline {
                break;
            }
            match rx.recv_timeout(deadline - now) {
                Ok(job) => take(job, &mut jobs, &mut rows),
                Err(_) => break,
            }
        }
        let answer = forward(&jobs, rows, model, loss, schema);
        let mut start = 0;
        for job in jobs {
            let part = answer.as_ref().map(|v| {
                let k = v.len() / rows.max(1);
                v[start * k..(start + job.n) * k].to_vec()
            });
            start += job.n;
            let _ = job.reply.send(part.map_err(Clone::clone)); // a client that left
        }
    }
}

/// The jobs' rows through the model as one batch: probabilities, or values in the target's
/// units.
fn forward(jobs: &[Job], rows: usize, model: &Model, loss: Loss, schema: &DataSchema) -> Answer {
    let mut x = Vec::with_capacity(jobs.iter().map(|j| j.x.len()).sum());
    for j in jobs {
        x.extend_from_slice(&j.x);
    }
    let mut dims = vec![rows];
    dims.extend_from_slice(model.input_shape().dims());
    let x = Tensor::from_vec(x, dims);
    // On this thread rather than handed to the pool: a server's batches are small, their
    // products run on one thread anyway, and each hand-over woke (and kept spinning) a pool
    // worker that the request threads needed. Large layers still split across the pool.
    let (mut values, _) = loss
        .predictions(&model.infer(&x))
        .map_err(|e| e.to_string())?;
    if !loss.is_classification() {
        schema.to_target_units(&mut values);
    }
    Ok(values)
}
