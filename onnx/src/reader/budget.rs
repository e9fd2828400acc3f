//! The memory the decoded messages will take, estimated before decoding.
//!
//! Prost checks every length prefix against the bytes that follow, but each sub-message
//! becomes a struct of up to a few hundred bytes: a file made of empty sub-messages
//! (two bytes each) would cost a hundred times its size or more. This walk counts the
//! sub-messages and repeated strings by type without allocating, and refuses a file whose
//! decoded messages would exceed a small multiple of its length. Malformed wire data ends
//! the walk early; the decoder then reports it.

use super::proto::*;
use relprop_nn::io::IoError;
use std::mem::size_of;

/// Decoded bytes allowed per byte of file, plus a fixed allowance for small files.
pub(crate) const BYTES_PER_BYTE: usize = 32;
/// The fixed allowance: small files are never refused by this check.
pub(crate) const ALLOWANCE: usize = 1 << 20;

/// The message types whose fields the walk follows.
#[derive(Clone, Copy)]
enum Msg {
    Model,
    Opset,
    Graph,
    Node,
    Attr,
    Tensor,
    Sparse,
    Entry,
    ValueInfo,
    Type,
    TypeTensor,
    Shape,
    Dim,
}

/// What a length-delimited field of a message decodes into.
enum Child {
    /// A sub-message of this type.
    Msg(Msg),
    /// One element of a repeated string or bytes field (a `String`/`Vec` header).
    Element,
    /// A scalar, string or packed field: its bytes are copied at most once.
    Flat,
}

fn child(msg: Msg, field: u64) -> Child {
    use Child::{Element, Flat};
    let m = Child::Msg;
    match (msg, field) {
        (Msg::Model, 7) => m(Msg::Graph),
        (Msg::Model, 8) => m(Msg::Opset),
        (Msg::Graph, 1) => m(Msg::Node),
        (Msg::Graph, 5) => m(Msg::Tensor),
        (Msg::Graph, 11..=13) => m(Msg::ValueInfo),
        (Msg::Node, 1 | 2) => Element,
        (Msg::Node, 5) => m(Msg::Attr),
        (Msg::Attr, 5 | 10) => m(Msg::Tensor),
        (Msg::Attr, 6 | 11) => m(Msg::Graph),
        (Msg::Attr, 9) => Element,
        (Msg::Attr, 14 | 15) => m(Msg::Type),
        (Msg::Attr, 22 | 23) => m(Msg::Sparse),
        (Msg::Tensor, 6) => Element,
        (Msg::Tensor, 13) => m(Msg::Entry),
        (Msg::Sparse, 1 | 2) => m(Msg::Tensor),
        (Msg::ValueInfo, 2) => m(Msg::Type),
        (Msg::Type, 1) => m(Msg::TypeTensor),
        (Msg::TypeTensor, 2) => m(Msg::Shape),
        (Msg::Shape, 1) => m(Msg::Dim),
        _ => Flat,
    }
}

fn size(msg: Msg) -> usize {
    match msg {
        Msg::Model => size_of::<ModelProto>(),
        Msg::Opset => size_of::<OperatorSetIdProto>(),
        Msg::Graph => size_of::<GraphProto>(),
        Msg::Node => size_of::<NodeProto>(),
        Msg::Attr => size_of::<AttributeProto>(),
        Msg::Tensor => size_of::<TensorProto>(),
        Msg::Sparse => size_of::<SparseTensorProto>(),
        Msg::Entry => size_of::<StringStringEntryProto>(),
        Msg::ValueInfo => size_of::<ValueInfoProto>(),
        Msg::Type => size_of::<TypeProto>(),
        Msg::TypeTensor => size_of::<TypeProtoTensor>(),
        Msg::Shape => size_of::<TensorShapeProto>(),
        Msg::Dim => size_of::<Dimension>(),
    }
}

/// Refuses `bytes` if its decoded messages would take more than the allowed multiple.
pub(crate) fn check(bytes: &[u8]) -> Result<(), IoError> {
    let limit = BYTES_PER_BYTE
        .saturating_mul(bytes.len())
        .saturating_add(ALLOWANCE);
    let cost = walk(bytes, Msg::Model, 0);
    if cost > limit {
        return Err(IoError::TooLarge {
            what: "onnx model (its decoded messages: a run of empty sub-messages?)".into(),
            declared: cost as u128,
            limit: limit as u128,
        });
    }
    Ok(())
}

/// The deepest nesting walked; prost refuses deeper messages (its limit is 100).
const MAX_DEPTH: usize = 100;

/// The structs that decoding `buf` as a `msg` creates, in bytes.
fn walk(mut buf: &[u8], msg: Msg, depth: usize) -> usize {
    let mut cost = 0usize;
    if depth > MAX_DEPTH {
        return cost;
    }
    while !buf.is_empty() {
        let Some(key) = varint(&mut buf) else {
            break;
        };
        let skip = match key & 7 {
            0 => match varint(&mut buf) {
                Some(_) => 0,
                None => break,
            },
            1 => 8,
            5 => 4,
            2 => {
                let Some(len) = varint(&mut buf).and_then(|l| usize::try_from(l).ok()) else {
                    break;
                };
                if len > buf.len() {
                    break;
                }
                let (body, rest) = buf.split_at(len);
                buf = rest;
                cost = cost.saturating_add(match child(msg, key >> 3) {
                    Child::Msg(m) => size(m).saturating_add(walk(body, m, depth + 1)),
                    Child::Element => size_of::<String>(),
                    Child::Flat => 0,
                });
                0
            }
            // Groups (deprecated) and invalid wire types: the decoder reports them.
            _ => break,
        };
        if skip > buf.len() {
            break;
        }
        buf = &buf[skip..];
    }
    cost
}

/// A base-128 varint, or `None` if it runs past the end or over ten bytes.
fn varint(buf: &mut &[u8]) -> Option<u64> {
    let mut v = 0u64;
    for (k, &b) in buf.iter().enumerate().take(10) {
        v |= u64::from(b & 0x7f) << (7 * k);
        if b < 0x80 {
            *buf = &buf[k + 1..];
            return Some(v);
        }
    }
    None
}
