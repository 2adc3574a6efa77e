//! Whole-step CUDA graphs, host side: which training steps may replay one captured graph, and
//! why the others run as they are (eagerly). Not wired into `fit` yet: `train.cuda_graphs` is
//! refused until the capture exists (README, CUDA section, lists what it needs). What is here
//! is the decision a captured loop takes each step, kept apart so it is tested without a GPU.
//!
//! A graph replays the kernels it recorded with the same arguments and device addresses, so a
//! step may replay only when everything it would pass differently can live in device memory the
//! graph reads (the batch gathered into fixed buffers, the step's random seed, the learning
//! rate) and its shapes are the captured step's. The first step runs eagerly (a warm-up: cuBLAS
//! and the memory pool set themselves up outside the capture, as PyTorch's
//! `torch.cuda.graphs` advises), the second is captured, later ones of that shape replay; a
//! step of another shape (an epoch's last partial batch) runs eagerly; a failed capture turns
//! graphs off for the run, with its reason.

/// What decides whether a step fits the captured graph: its shapes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepShape {
    /// Rows of this process's share of the batch.
    pub rows: usize,
    /// One input row's dimensions.
    pub input: Vec<usize>,
}

/// How to run one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// Run the step's ops as they come, for the reason given (said once in the log when it
    /// is new).
    Eager(Why),
    /// Record this step into a graph (and run it).
    Capture,
    /// Replay the captured graph.
    Replay,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Why {
    /// `train.cuda_graphs = false`, or not on a GPU.
    Off,
    /// The first step of the run: warm-up before capture.
    WarmUp,
    /// Another shape than the captured step's (the last, partial batch of an epoch).
    ShapeChanged,
    /// The run cannot capture its steps (a reason such as "data.stream reads batches on the
    /// host mid-step").
    Unsupported(String),
    /// Capture failed once; the run goes on without graphs.
    CaptureFailed(String),
}

/// The per-run decision. `next` is called before each step; `captured` or `capture_failed`
/// after a `Plan::Capture`.
#[derive(Debug)]
pub struct Graphs {
    state: State,
}

#[derive(Debug)]
enum State {
    Off(Why),
    /// No step taken yet.
    Cold,
    /// Warmed up; the next step of a capturable shape is captured.
    Warm,
    /// A capture of this shape is in progress.
    Capturing(StepShape),
    Captured(StepShape),
}

impl Graphs {
    /// `wanted`: the config asks for graphs and the run is on a GPU; `unsupported`: why this
    /// run's steps cannot be captured, if anything.
    pub fn new(wanted: bool, unsupported: Option<String>) -> Graphs {
        let state = match (wanted, unsupported) {
            (false, _) => State::Off(Why::Off),
            (true, Some(why)) => State::Off(Why::Unsupported(why)),
            (true, None) => State::Cold,
        };
        Graphs { state }
    }

    pub fn next(&mut self, shape: &StepShape) -> Plan {
        match &self.state {
            State::Off(why) => Plan::Eager(why.clone()),
            State::Cold => {
                self.state = State::Warm;
                Plan::Eager(Why::WarmUp)
            }
            State::Warm => {
                self.state = State::Capturing(shape.clone());
                Plan::Capture
            }
            State::Capturing(_) => panic!("next() before the capture was reported"),
            State::Captured(s) if s == shape => Plan::Replay,
            State::Captured(_) => Plan::Eager(Why::ShapeChanged),
        }
    }

    /// The capture asked for by the last `next` succeeded.
    pub fn captured(&mut self) {
        match std::mem::replace(&mut self.state, State::Cold) {
            State::Capturing(s) => self.state = State::Captured(s),
            other => panic!("captured() without a capture in progress ({other:?})"),
        }
    }

    /// The capture failed (the step must then be run eagerly); graphs stay off for the run.
    pub fn capture_failed(&mut self, why: impl Into<String>) {
        assert!(
            matches!(self.state, State::Capturing(_)),
            "capture_failed() without a capture in progress"
        );
        self.state = State::Off(Why::CaptureFailed(why.into()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(rows: usize) -> StepShape {
        StepShape {
            rows,
            input: vec![784],
        }
    }

    #[test]
    fn warm_up_then_capture_then_replay_same_shapes_only() {
        let mut g = Graphs::new(true, None);
        assert_eq!(g.next(&shape(32)), Plan::Eager(Why::WarmUp));
        assert_eq!(g.next(&shape(32)), Plan::Capture);
        g.captured();
        assert_eq!(g.next(&shape(32)), Plan::Replay);
        assert_eq!(g.next(&shape(32)), Plan::Replay);
        // The epoch's last batch of 8 rows runs eagerly; the next epoch replays again.
        assert_eq!(g.next(&shape(8)), Plan::Eager(Why::ShapeChanged));
        assert_eq!(g.next(&shape(32)), Plan::Replay);
        let other_input = StepShape {
            rows: 32,
            input: vec![28, 28],
        };
        assert_eq!(g.next(&other_input), Plan::Eager(Why::ShapeChanged));
    }

    #[test]
    fn a_partial_first_capture_is_what_replays() {
        // A run resumed at an epoch's last batch captures that shape; full batches then run
        // eagerly. Correct, if slower: the graph holds whatever shape it recorded.
        let mut g = Graphs::new(true, None);
        g.next(&shape(32));
        assert_eq!(g.next(&shape(8)), Plan::Capture);
        g.captured();
        assert_eq!(g.next(&shape(32)), Plan::Eager(Why::ShapeChanged));
        assert_eq!(g.next(&shape(8)), Plan::Replay);
    }

    #[test]
    fn a_failed_capture_turns_graphs_off_with_its_reason() {
        let mut g = Graphs::new(true, None);
        g.next(&shape(32));
        assert_eq!(g.next(&shape(32)), Plan::Capture);
        g.capture_failed("cuStreamEndCapture: operation not permitted when stream is capturing");
        let plan = g.next(&shape(32));
        assert!(
            matches!(&plan, Plan::Eager(Why::CaptureFailed(w)) if w.contains("EndCapture")),
            "{plan:?}"
        );
        assert_eq!(g.next(&shape(32)), plan, "for the rest of the run");
    }

    #[test]
    fn off_and_unsupported_runs_never_capture() {
        let mut g = Graphs::new(false, None);
        for _ in 0..3 {
            assert_eq!(g.next(&shape(32)), Plan::Eager(Why::Off));
        }
        let mut g = Graphs::new(true, Some("data.stream".into()));
        assert_eq!(
            g.next(&shape(32)),
            Plan::Eager(Why::Unsupported("data.stream".into()))
        );
    }

    #[test]
    #[should_panic(expected = "without a capture in progress")]
    fn reporting_a_capture_that_was_not_asked_for_is_a_bug() {
        let mut g = Graphs::new(true, None);
        g.next(&shape(32));
        g.captured();
    }
}
