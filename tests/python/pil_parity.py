#!/usr/bin/env python3
"""ptq's image preprocessing equals Pillow/torchvision's, pixel for pixel (issue 15).

`quantize preprocess` writes the tensors ptq feeds a model; they must equal the ones made with
PIL.Image.open(...).convert(...), Image.resize (antialiased BILINEAR/BICUBIC), torchvision's
centre-crop rounding, ToTensor's /255 and Normalize, bit for bit:
- all 1000 ImageNet sample images with --preprocess torchvision (JPEG via libjpeg-turbo),
- a subset with --resize-filter bicubic, with --resize WxH, as PNG files (the stb path), and as
  grayscale (convert("L")) through a one-channel model input.
Exit 77 (skip) when ../shared or Pillow is missing.
"""
import argparse
import pathlib
import subprocess
import sys
import tempfile

try:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper
    from PIL import Image
except ImportError as e:
    print(f"SKIP: numpy / onnx / Pillow not importable ({e}); run tools/setup.sh")
    sys.exit(77)

MEAN = np.array([0.485, 0.456, 0.406], np.float32).reshape(3, 1, 1)
STD = np.array([0.229, 0.224, 0.225], np.float32).reshape(3, 1, 1)


def torchvision_like(path, resize_short=None, resize=None, crop=224, filt=Image.BILINEAR, mode="RGB", normalize=True):
    """torchvision.transforms: Resize -> CenterCrop -> ToTensor -> Normalize, on a PIL image."""
    im = Image.open(path).convert(mode)
    w, h = im.size
    if resize_short:
        nw, nh = (resize_short, int(resize_short * h / w)) if w <= h else (int(resize_short * w / h), resize_short)
    else:
        nw, nh = resize
    im = im.resize((nw, nh), filt)
    if crop:
        top, left = int(round((nh - crop) / 2.0)), int(round((nw - crop) / 2.0))
        im = im.crop((left, top, left + crop, top + crop))
    x = np.asarray(im).astype(np.float32)
    x = x.transpose(2, 0, 1) if x.ndim == 3 else x[None]
    x = x / np.float32(255)
    return (x - MEAN) / STD if normalize else x


def preprocess(quantize, data, out, *flags):
    r = subprocess.run([quantize, "preprocess", str(data), "-o", str(out), "-q", *flags], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"FAIL: quantize preprocess {' '.join(flags)}: {r.stderr.strip()}")
    return sorted(out.glob("*.npy"))


def check(name, files, outputs, reference):
    assert len(files) == len(outputs), (name, len(files), len(outputs))
    exact, worst = 0, 0.0
    for f, o in zip(files, outputs):
        assert o.name.endswith(f.stem + ".npy"), (o.name, f.name)
        y = np.load(o)[0]
        x = reference(f)
        assert x.shape == y.shape, (name, f.name, x.shape, y.shape)
        d = float(np.abs(x - y).max())
        exact += d == 0
        worst = max(worst, d)
    print(f"{name}: {exact}/{len(files)} images bit-exact to Pillow, max |diff| {worst:g}")
    if exact != len(files):
        sys.exit(f"FAIL: {name}: {len(files) - exact} images differ from Pillow's (max |diff| {worst:g})")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quantize", required=True)
    ap.add_argument("--shared", required=True)
    args = ap.parse_args()
    images = pathlib.Path(args.shared) / "data/imagenet-sample"
    if not images.is_dir():
        print(f"SKIP: {images} not found (../shared is not beside the repository)")
        return 77
    files = sorted(images.glob("*.jpg"))
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        out = preprocess(args.quantize, images, tmp / "tv", "--preprocess", "torchvision")
        check("torchvision preset, all JPEGs", files, out, lambda f: torchvision_like(f, resize_short=256))

        subset = tmp / "subset"
        subset.mkdir()
        for f in files[::40]:
            (subset / f.name).symlink_to(f)
        few = sorted(subset.glob("*.jpg"))
        out = preprocess(args.quantize, subset, tmp / "bicubic", "--preprocess", "torchvision", "--resize-filter", "bicubic")
        check("bicubic", few, out, lambda f: torchvision_like(f, resize_short=256, filt=Image.BICUBIC))
        out = preprocess(args.quantize, subset, tmp / "resize", "--preprocess", "torchvision", "--resize", "300x200",
                         "--center-crop", "160")
        check("--resize 300x200 (upscaling and downscaling)", few, out,
              lambda f: torchvision_like(f, resize=(300, 200), crop=160))

        pngs = tmp / "png"
        pngs.mkdir()
        for f in few:
            Image.open(f).convert("RGBA").save(pngs / (f.stem + ".png"))
        out = preprocess(args.quantize, pngs, tmp / "png_out", "--preprocess", "torchvision")
        check("RGBA PNG (stb decoder, alpha dropped)", sorted(pngs.glob("*.png")), out,
              lambda f: torchvision_like(f, resize_short=256))

        # A one-channel model input: colour JPEGs become Pillow's convert("L").
        gray = tmp / "gray.onnx"
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 64, 64])
        y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 64, 64])
        g = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "gray", [x], [y])
        onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], ir_version=8), gray)
        out = preprocess(args.quantize, subset, tmp / "gray_out", "--model", str(gray), "--resize", "64x64",
                         "--scale", "1/255")
        check("grayscale via convert('L')", few, out,
              lambda f: torchvision_like(f, resize=(64, 64), crop=None, mode="L", normalize=False))
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
