//! Writing ONNX: the protobuf messages (proto.rs) and a graph builder (graph.rs) that layers
//! describe themselves with (`nn::Layer::export`); `export` assembles a whole model.

mod graph;
pub mod proto;

pub use graph::{dims_i64, Attr, Graph};
