//! The only names a `.pth` pickle may import, and what calling them builds.
//!
//! Like PyTorch's `weights_only=True` loader, the reader allows `collections.OrderedDict`,
//! the tensor rebuild functions of `torch._utils`, and the typed storage classes; calling
//! a rebuild function records a [`TensorRef`] (storage, offset, shape, strides) that the
//! archive layer later checks against the storage's bytes. Any other name is refused
//! before anything is built, with the name in the message.

use super::pickle::{Object, Pickle, Value};
use crate::io::IoError;

/// The most dimensions a stored tensor may have (PyTorch's own limit is 64; weights have 4).
const MAX_RANK: usize = 16;

/// The element types of PyTorch's typed storages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageDtype {
    /// `torch.FloatStorage`: f32.
    Float,
    /// `torch.DoubleStorage`: f64.
    Double,
    /// `torch.HalfStorage`: f16.
    Half,
    /// `torch.BFloat16Storage`: bf16.
    BFloat16,
    /// `torch.LongStorage`: i64.
    Long,
    /// `torch.IntStorage`: i32.
    Int,
    /// `torch.ShortStorage`: i16.
    Short,
    /// `torch.CharStorage`: i8.
    Char,
    /// `torch.ByteStorage`: u8.
    Byte,
    /// `torch.BoolStorage`: bool.
    Bool,
}

impl StorageDtype {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            StorageDtype::Double | StorageDtype::Long => 8,
            StorageDtype::Float | StorageDtype::Int => 4,
            StorageDtype::Half | StorageDtype::BFloat16 | StorageDtype::Short => 2,
            StorageDtype::Char | StorageDtype::Byte | StorageDtype::Bool => 1,
        }
    }

    /// The storage class's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            StorageDtype::Float => "FloatStorage",
            StorageDtype::Double => "DoubleStorage",
            StorageDtype::Half => "HalfStorage",
            StorageDtype::BFloat16 => "BFloat16Storage",
            StorageDtype::Long => "LongStorage",
            StorageDtype::Int => "IntStorage",
            StorageDtype::Short => "ShortStorage",
            StorageDtype::Char => "CharStorage",
            StorageDtype::Byte => "ByteStorage",
            StorageDtype::Bool => "BoolStorage",
        }
    }

    const ALL: [StorageDtype; 10] = [
        StorageDtype::Float,
        StorageDtype::Double,
        StorageDtype::Half,
        StorageDtype::BFloat16,
        StorageDtype::Long,
        StorageDtype::Int,
        StorageDtype::Short,
        StorageDtype::Char,
        StorageDtype::Byte,
        StorageDtype::Bool,
    ];
}

/// An importable name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Global {
    /// `collections.OrderedDict`: the state dict itself and empty hook dicts.
    OrderedDict,
    /// `torch._utils._rebuild_tensor_v2`: a tensor view of a storage.
    RebuildTensor,
    /// `torch._utils._rebuild_parameter`: a tensor wrapped as a parameter.
    RebuildParameter,
    /// `torch.<Type>Storage`: names a storage's element type inside a persistent id.
    Storage(StorageDtype),
}

impl Global {
    /// The allowed global `module.name`, or an error naming it.
    pub fn lookup(module: &str, name: &str) -> Result<Global, IoError> {
        let found = match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensor),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch", storage) => StorageDtype::ALL
                .into_iter()
                .find(|d| d.name() == storage)
                .map(Global::Storage),
            _ => None,
        };
        found.ok_or_else(|| IoError::Unsupported {
            what: "pth pickle".into(),
            reason: format!(
                "it imports `{}.{}`, which a tensor state dict never needs; only tensors, \
                 storages and OrderedDicts are read (no code from the file is run)",
                shorten(module),
                shorten(name)
            ),
        })
    }

    /// Calls the global with the tuple `args`, building the value it stands for.
    pub fn call(self, heap: &mut Pickle, args: Value) -> Result<Value, IoError> {
        let args: Vec<Value> = heap
            .seq(args)
            .ok_or_else(|| bad("a call's arguments are not a tuple"))?
            .to_vec();
        match self {
            Global::OrderedDict if args.is_empty() => {
                heap.objects.push(Object::Dict(Vec::new()));
                Ok(Value::Object(heap.objects.len() - 1))
            }
            Global::OrderedDict => Err(bad("OrderedDict is called with arguments")),
            Global::RebuildTensor => rebuild_tensor(heap, &args),
            Global::RebuildParameter => match args.first() {
                Some(t @ Value::Tensor(_)) => Ok(*t),
                _ => Err(bad("_rebuild_parameter is not given a tensor")),
            },
            Global::Storage(d) => Err(bad(format!(
                "{} is called; storages come only from persistent ids",
                d.name()
            ))),
        }
    }
}

/// A storage as a persistent id declares it; its bytes live elsewhere in the file.
#[derive(Clone, Debug, PartialEq)]
pub struct StorageRef {
    /// The element type.
    pub dtype: StorageDtype,
    /// The key naming its bytes (`data/<key>` in a zip archive).
    pub key: String,
    /// Elements, as declared.
    pub numel: usize,
}

/// A tensor as `_rebuild_tensor_v2` describes it: a strided view of a storage.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorRef {
    /// Index into the pickle's storages.
    pub storage: usize,
    /// First element's index within the storage.
    pub offset: usize,
    /// Dimensions.
    pub shape: Vec<usize>,
    /// Elements between neighbours along each dimension.
    pub strides: Vec<usize>,
}

fn bad(reason: impl Into<String>) -> IoError {
    IoError::malformed("pth pickle", reason)
}

/// At most 60 characters of a name from the file, so a hostile name cannot flood a message.
fn shorten(s: &str) -> String {
    let mut out: String = s.chars().take(60).collect();
    if out.len() < s.len() {
        out.push_str("...");
    }
    out.escape_debug().to_string()
}

fn non_negative(v: Value, what: &str) -> Result<usize, IoError> {
    match v {
        Value::Int(i) => usize::try_from(i).map_err(|_| bad(format!("{what} is negative"))),
        _ => Err(bad(format!("{what} is not an integer"))),
    }
}

fn ints(heap: &Pickle, v: Value, what: &str) -> Result<Vec<usize>, IoError> {
    let items = heap
        .seq(v)
        .ok_or_else(|| bad(format!("{what} is not a tuple")))?;
    if items.len() > MAX_RANK {
        return Err(bad(format!(
            "{what} has {} dimensions, more than {MAX_RANK}",
            items.len()
        )));
    }
    items.iter().map(|&i| non_negative(i, what)).collect()
}

/// `_rebuild_tensor_v2(storage, offset, size, stride, requires_grad, hooks[, metadata])`.
fn rebuild_tensor(heap: &mut Pickle, args: &[Value]) -> Result<Value, IoError> {
    if !(6..=7).contains(&args.len()) {
        return Err(bad(format!(
            "_rebuild_tensor_v2 takes 6 or 7 arguments, given {}",
            args.len()
        )));
    }
    let Value::Storage(storage) = args[0] else {
        return Err(bad("_rebuild_tensor_v2 is not given a storage"));
    };
    let offset = non_negative(args[1], "a tensor's storage offset")?;
    let shape = ints(heap, args[2], "a tensor's size")?;
    let strides = ints(heap, args[3], "a tensor's stride")?;
    if shape.len() != strides.len() {
        return Err(bad(format!(
            "a tensor has {} dimensions but {} strides",
            shape.len(),
            strides.len()
        )));
    }
    heap.tensors.push(TensorRef {
        storage,
        offset,
        shape,
        strides,
    });
    Ok(Value::Tensor(heap.tensors.len() - 1))
}

/// A persistent id `('storage', <Type>Storage, key, location, numel[, view])`, as both
/// of PyTorch's formats write it; legacy views of storages (a sixth item not `None`) are
/// refused (PyTorch stopped writing them in 2018).
pub(super) fn persistent_storage(heap: &mut Pickle, pid: Value) -> Result<Value, IoError> {
    let items = heap
        .seq(pid)
        .ok_or_else(|| bad("a persistent id is not a tuple"))?
        .to_vec();
    if !(5..=6).contains(&items.len()) || heap.str(items[0]) != Some("storage") {
        return Err(bad(
            "a persistent id is not ('storage', type, key, location, size)",
        ));
    }
    let Value::Global(Global::Storage(dtype)) = items[1] else {
        return Err(bad("a persistent id does not name a storage type"));
    };
    let key = heap
        .str(items[2])
        .ok_or_else(|| bad("a storage key is not a string"))?
        .to_string();
    if key.is_empty() || key.len() > 64 || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(bad("a storage key is not a short alphanumeric name"));
    }
    let numel = non_negative(items[4], "a storage's size")?;
    if items.get(5).is_some_and(|v| *v != Value::None) {
        return Err(IoError::Unsupported {
            what: "pth pickle".into(),
            reason: "storage views (written by PyTorch before 1.0); re-save the file".into(),
        });
    }
    heap.storages.push(StorageRef { dtype, key, numel });
    Ok(Value::Storage(heap.storages.len() - 1))
}
