//! The decoded model: plain values, independent of the protobuf encoding.

/// A decoded `.onnx` file: the main graph and the operator set it was written for.
#[derive(Clone, Debug, PartialEq)]
pub struct OnnxModel {
    /// The version of the default (`ai.onnx`) operator set.
    pub opset: i64,
    /// Who wrote the file (`pytorch 2.15.0`), for messages.
    pub producer: String,
    /// The main graph.
    pub graph: Graph,
}

/// A graph: nodes in file order, named constants, inputs and outputs.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    /// The graph's name.
    pub name: String,
    /// Nodes in file order (ONNX requires a topological order; the importer checks it).
    pub nodes: Vec<Node>,
    /// Initializers (weights and other constants), in file order.
    pub initializers: Vec<(String, ConstTensor)>,
    /// Graph inputs that are not initializers.
    pub inputs: Vec<ValueInfo>,
    /// Graph outputs.
    pub outputs: Vec<ValueInfo>,
}

/// One operator application.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Node {
    /// The node's name (may be empty in the file).
    pub name: String,
    /// The operator, e.g. `Conv`.
    pub op_type: String,
    /// The operator's domain (empty or `ai.onnx` for the standard set).
    pub domain: String,
    /// Names of the values read; an empty name is an omitted optional input.
    pub inputs: Vec<String>,
    /// Names of the values written.
    pub outputs: Vec<String>,
    /// Attributes in file order.
    pub attributes: Vec<Attribute>,
}

impl Node {
    /// The attribute called `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&AttrValue> {
        self.attributes
            .iter()
            .find(|a| a.name == name)
            .map(|a| &a.value)
    }
}

/// A named attribute.
#[derive(Clone, Debug, PartialEq)]
pub struct Attribute {
    /// Its name, e.g. `strides`.
    pub name: String,
    /// Its value.
    pub value: AttrValue,
}

/// An attribute's value.
#[derive(Clone, Debug, PartialEq)]
pub enum AttrValue {
    /// `INT`.
    Int(i64),
    /// `FLOAT`.
    Float(f32),
    /// `INTS`.
    Ints(Vec<i64>),
    /// `FLOATS`.
    Floats(Vec<f32>),
    /// `STRING` (lossily decoded as UTF-8).
    String(String),
    /// `TENSOR` (the `value` of a `Constant` node).
    Tensor(ConstTensor),
    /// Any other kind (graphs, sparse tensors, strings lists...), named for messages.
    Other(&'static str),
}

/// A graph input or output: its name and declared shape.
#[derive(Clone, Debug, PartialEq)]
pub struct ValueInfo {
    /// The value's name.
    pub name: String,
    /// The declared dimensions (empty when the file declares no shape).
    pub dims: Vec<Dim>,
}

/// One declared dimension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Dim {
    /// A fixed size.
    Fixed(usize),
    /// A symbolic or unknown size (a dynamic batch, `batch_size` or empty).
    Dynamic(String),
}

/// A constant tensor: an initializer, or a `Constant` node's value.
#[derive(Clone, Debug, PartialEq)]
pub struct ConstTensor {
    /// Dimensions (empty for a scalar).
    pub dims: Vec<usize>,
    /// The elements, row-major; `dims.iter().product()` of them.
    pub data: ConstData,
}

/// The elements of a constant, widened to one of two types.
#[derive(Clone, Debug, PartialEq)]
pub enum ConstData {
    /// `FLOAT`, and `DOUBLE`/`FLOAT16`/`BFLOAT16` converted to f32.
    F32(Vec<f32>),
    /// `INT64`, and `INT32`/`INT16`/`INT8`/`UINT8`/`BOOL` widened to i64.
    I64(Vec<i64>),
}
