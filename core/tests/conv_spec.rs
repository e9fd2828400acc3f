//! The options of `Conv2dSpec` at the tensor level: validation errors instead of panics,
//! the builders, and the fused entry points of general convolutions against their
//! composition from the separate forward pass and input VJP.

use relprop_core::{Conv2dSpec, Error, Tensor};

fn rand(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_uniform(shape, -1.0, 1.0, seed)
}

fn assert_close(what: &str, a: &Tensor, b: &Tensor, tol: f32) {
    assert_eq!(a.shape(), b.shape(), "{what}: shapes");
    for (i, (x, y)) in a.data().iter().zip(b.data()).enumerate() {
        assert!(
            (x - y).abs() <= tol * (1.0 + y.abs()),
            "{what}[{i}]: {x} vs {y}"
        );
    }
}

#[test]
fn builders_set_the_fields_and_default_is_plain() {
    let d = Conv2dSpec::default();
    assert_eq!(d, Conv2dSpec::new(1, 0));
    assert!(d.is_plain());
    let s = Conv2dSpec::new(2, 1);
    assert_eq!(
        (s.padding, s.padding_end, s.dilation, s.groups),
        ([1, 1], [1, 1], [1, 1], 1)
    );
    assert!(s.is_plain());
    let s = s.with_padding_end([2, 0]);
    assert_eq!((s.padding, s.padding_end), ([1, 1], [2, 0]));
    assert!(!s.is_plain());
    let s = Conv2dSpec::new(1, 0)
        .with_pads([0, 1], [2, 3])
        .with_stride([2, 1]);
    assert_eq!(
        (s.stride, s.padding, s.padding_end),
        ([2, 1], [0, 1], [2, 3])
    );
    assert!(!Conv2dSpec::new(1, 1).with_dilation([2, 1]).is_plain());
    assert!(!Conv2dSpec::new(1, 1).with_groups(2).is_plain());
}

#[test]
fn output_shapes_follow_the_onnx_formula() {
    // (h + pt + pb - d * (kh - 1) - 1) / s + 1 on each axis.
    let x = rand(&[2, 6, 11, 9], 1);
    let w = rand(&[4, 3, 3, 2], 2);
    let spec = Conv2dSpec::new(1, 0)
        .with_stride([2, 3])
        .with_pads([1, 0], [2, 1])
        .with_dilation([2, 3])
        .with_groups(2);
    let y = x.conv2d(&w, None, &spec).unwrap();
    let oh = (11 + 1 + 2 - 2 * 2 - 1) / 2 + 1;
    let ow = (9 + 1 - 3 - 1) / 3 + 1;
    assert_eq!(y.shape(), [2, 4, oh, ow]);
}

#[test]
fn invalid_specs_are_errors() {
    let x = rand(&[1, 4, 5, 5], 1);
    let spec = |g: usize| Conv2dSpec::new(1, 0).with_groups(g);
    let cases: Vec<(&str, Tensor, Conv2dSpec)> = vec![
        ("groups not dividing in", rand(&[6, 1, 3, 3], 2), spec(3)),
        ("groups not dividing out", rand(&[3, 2, 3, 3], 2), spec(2)),
        ("zero groups", rand(&[4, 4, 3, 3], 2), spec(0)),
        ("weight in != in / groups", rand(&[4, 4, 3, 3], 2), spec(2)),
        (
            "zero dilation",
            rand(&[4, 4, 3, 3], 2),
            Conv2dSpec::new(1, 0).with_dilation([0, 1]),
        ),
        (
            "dilated kernel too large",
            rand(&[4, 4, 3, 3], 2),
            Conv2dSpec::new(1, 0).with_dilation([3, 1]),
        ),
        (
            "kernel larger than padded input",
            rand(&[4, 4, 7, 3], 2),
            Conv2dSpec::new(1, 0).with_pads([1, 0], [0, 0]),
        ),
        (
            "absurd dilation",
            rand(&[4, 4, 3, 3], 2),
            Conv2dSpec::new(1, 0).with_dilation([usize::MAX, 1]),
        ),
        (
            "absurd padding",
            rand(&[4, 4, 3, 3], 2),
            Conv2dSpec::new(1, 0).with_pads([usize::MAX, 0], [1, 0]),
        ),
        ("zero stride", rand(&[4, 4, 3, 3], 2), Conv2dSpec::new(0, 0)),
    ];
    for (what, w, spec) in cases {
        let out_shape = [1, w.shape()[0], 3, 3];
        let results = [
            x.conv2d(&w, None, &spec).err(),
            Tensor::conv2d_input_grad(&rand(&out_shape, 3), &w, x.shape(), &spec).err(),
            Tensor::conv2d_weight_grad(&x, &rand(&out_shape, 3), w.shape(), &spec).err(),
            x.conv2d_forward_map_backward(&w, None, &rand(&out_shape, 3), &spec, |r, z| r * z)
                .err(),
            Tensor::conv2d_weighted_input_grads(x.shape(), &spec, |_, _| {}, &[(&w, &x, 1.0)])
                .err(),
        ];
        for e in results {
            let e = e.unwrap_or_else(|| panic!("{what}: accepted"));
            assert!(
                matches!(e, Error::Shape { .. } | Error::Invalid { .. }),
                "{what}: {e}"
            );
            assert!(e.to_string().contains("conv2d"), "{what}: {e}");
        }
    }
}

/// Grouped, depthwise, dilated and asymmetric specs with matching weight shapes.
fn general_cases() -> Vec<(Tensor, Tensor, Tensor, Conv2dSpec)> {
    let mk = |c: usize, o: usize, k: usize, spec: Conv2dSpec, seed: u64| {
        let x = rand(&[3, c, 9, 8], seed);
        let w = rand(&[o, c / spec.groups, k, k], seed + 1);
        let b = rand(&[o], seed + 2);
        (x, w, b, spec)
    };
    vec![
        mk(
            6,
            6,
            3,
            Conv2dSpec::new(2, 0)
                .with_padding_end([1, 1])
                .with_groups(6),
            1,
        ),
        mk(4, 8, 3, Conv2dSpec::new(1, 1).with_groups(4), 2),
        mk(
            6,
            4,
            3,
            Conv2dSpec::new(1, 2).with_dilation([2, 2]).with_groups(2),
            3,
        ),
        mk(3, 5, 2, Conv2dSpec::new(1, 0).with_pads([1, 0], [0, 2]), 4),
    ]
}

#[test]
fn fused_entry_points_equal_their_composition() {
    for (i, (x, w, b, spec)) in general_cases().into_iter().enumerate() {
        let z = x.conv2d(&w, Some(&b), &spec).unwrap();
        let r = rand(z.shape(), 10 + i as u64);
        let f = |r: f32, z: f32| r / (z + 0.5f32.copysign(z));
        let s = r.zip_with(&z, "map", f).unwrap();
        let want = x
            .mul(&Tensor::conv2d_input_grad(&s, &w, x.shape(), &spec).unwrap())
            .unwrap();
        let got = x
            .conv2d_forward_map_backward(&w, Some(&b), &r, &spec, f)
            .unwrap();
        assert_close(&format!("case {i} fused"), &got, &want, 1e-4);

        let w2 = rand(w.shape(), 20 + i as u64);
        let one = rand(
            &[1, x.shape()[1], x.shape()[2], x.shape()[3]],
            30 + i as u64,
        );
        let per = r.numel() / x.shape()[0];
        let got = Tensor::conv2d_weighted_input_grads(
            x.shape(),
            &spec,
            |n, s_n| s_n.copy_from_slice(&r.data()[n * per..(n + 1) * per]),
            &[(&w, &x, 2.0), (&w2, &one, -1.0)],
        )
        .unwrap();
        let t1 = x
            .mul(&Tensor::conv2d_input_grad(&r, &w, x.shape(), &spec).unwrap())
            .unwrap();
        let t2 = one
            .mul(&Tensor::conv2d_input_grad(&r, &w2, x.shape(), &spec).unwrap())
            .unwrap();
        let want = t1.mul_scalar(2.0).sub(&t2).unwrap();
        assert_close(&format!("case {i} weighted"), &got, &want, 1e-4);
    }
}

#[test]
fn plain_specs_written_out_take_the_same_path_as_new() {
    // A spec spelled with the builders but plain gives the very same bits as `new`.
    let x = rand(&[2, 3, 7, 6], 1);
    let w = rand(&[4, 3, 3, 3], 2);
    let a = x.conv2d(&w, None, &Conv2dSpec::new(2, 1)).unwrap();
    let spec = Conv2dSpec::default()
        .with_stride([2, 2])
        .with_pads([1, 1], [1, 1])
        .with_groups(1);
    assert!(spec.is_plain());
    let b = x.conv2d(&w, None, &spec).unwrap();
    assert_eq!(a.data(), b.data());
}
