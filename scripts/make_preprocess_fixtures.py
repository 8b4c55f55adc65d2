#!/usr/bin/python3
"""Writes tests/fixtures/preprocess/: small images and what PIL 9.4 / torchvision 0.14 make of them.

Run with Debian's /usr/bin/python3 (PIL 9.4, torch 1.13, torchvision 0.14):
    /usr/bin/python3 scripts/make_preprocess_fixtures.py [OUT_DIR]

Files (all images PNG unless named .jpg/.webp; expected outputs are lossless PNG):
  src_*                       source images (synthetic: gradients, hard edges, noise)
  resize_cases.txt            "<src> <filter> <w> <h> <expected.png>": PIL Image.resize(...) of the
                              PIL-decoded source (RGB, or L for gray sources)
  transform_cases.txt         "<src> <in_chans> <resize> <crop> <filter> <mean,..> <std,..> <expected.bin>":
                              torchvision eval transform output; .bin = b"VITT", uint32 ndim, uint32 dims,
                              float32 data, all little-endian
  convert_cases.txt           "<src> <expected.png>": Image.open(src).convert("RGB"), after
                              ImageOps.exif_transpose (vit applies EXIF orientation, see lib/image.hpp)
                              (GIF: the first frame)
  gray_cases.txt              "<src> <expected.png>": Image.open(src).convert("RGB").convert("L")
"""
import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torchvision import transforms
from torchvision.transforms import InterpolationMode

OUT = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "tests/fixtures/preprocess"
rng = np.random.default_rng(20240229)

FILTERS = {"nearest": Image.NEAREST, "bilinear": Image.BILINEAR, "bicubic": Image.BICUBIC}
TV_FILTERS = {"nearest": InterpolationMode.NEAREST, "bilinear": InterpolationMode.BILINEAR,
              "bicubic": InterpolationMode.BICUBIC}


def synthetic(w, h, channels, noise=40, gen=None):
    """Gradient + a hard-edged block + a stripe pattern + noise: exercises rounding and clipping."""
    gen = gen or rng
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        p = 255 * (0.5 + 0.5 * np.sin(x / (3 + 2 * c) + y / (5 + c)))
        p[h // 4: h // 2, w // 5: w // 2] = 255 if c != 1 else 0          # hard edges -> overshoot
        p[:, (np.arange(w) // 2) % 3 == 0] *= 0.2                        # fine stripes
        p += gen.normal(0, noise, (h, w))
        planes.append(p)
    a = np.clip(np.rint(np.stack(planes, -1)), 0, 255).astype(np.uint8)
    return a if channels > 1 else a[..., 0]


def save_png(arr_or_img, name):
    img = arr_or_img if isinstance(arr_or_img, Image.Image) else Image.fromarray(arr_or_img)
    if img.mode in ("RGB", "L"):  # pixels only: no tRNS chunk carried over from a converted image
        img = Image.frombytes(img.mode, img.size, img.tobytes())
    img.save(OUT / name, optimize=True)


def png16(arr, color_type):
    """A 16-bit PNG by hand (PIL cannot write 16-bit RGB)."""
    h, w = arr.shape[:2]
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(t, d):
        return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def gif_raw(screen, frame, pixels, local_palette=None, global_palette=None, transparent=None):
    """A one-frame GIF89a written by hand: PIL never writes a frame offset from the screen origin, a local
    colour table or a file without colour tables. LZW with 9-bit codes only (a clear code every 250
    literals keeps the code table below 512 entries)."""
    def table(pal):
        n = len(pal) // 3
        bits = max(1, (n - 1).bit_length())
        return bits, bytes(pal) + bytes(3 * (2 ** bits) - len(pal))
    out = bytearray(b"GIF89a" + struct.pack("<HH", *screen))
    if global_palette:
        bits, tab = table(global_palette)
        out += bytes([0x80 | (bits - 1), 0, 0]) + tab
    else:
        out += bytes([0, 0, 0])
    if transparent is not None:
        out += bytes([0x21, 0xF9, 4, 1, 0, 0, transparent, 0])
    x, y, w, h = frame
    flags, tab = 0, b""
    if local_palette:
        bits, tab = table(local_palette)
        flags = 0x80 | (bits - 1)
    out += bytes([0x2C]) + struct.pack("<HHHH", x, y, w, h) + bytes([flags]) + tab
    codes = []
    for i, v in enumerate(np.asarray(pixels, dtype=np.uint8).reshape(-1)):
        if i % 250 == 0:
            codes.append(256)
        codes.append(int(v))
    codes.append(257)
    acc = nbits = 0
    data = bytearray()
    for c in codes:
        acc |= c << nbits
        nbits += 9
        while nbits >= 8:
            data.append(acc & 255)
            acc >>= 8
            nbits -= 8
    if nbits:
        data.append(acc & 255)
    out.append(8)
    for i in range(0, len(data), 255):
        out += bytes([len(data[i:i + 255])]) + data[i:i + 255]
    out += b"\x00;"
    return bytes(out)


def gif_cases():
    """GIFs (decoded by vit itself, OpenCV 4.6 has no GIF reader): PIL-written animated and interlaced files,
    and hand-written ones for a frame offset with transparency, a local colour table and no colour table."""
    g = np.random.default_rng(7)   # its own generator: the other fixtures keep their bytes
    frames = [Image.fromarray(synthetic(20, 10, 3, gen=g)).quantize(64), Image.fromarray(synthetic(20, 10, 3, gen=g)).quantize(64)]
    frames[0].save(OUT / "conv_anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    Image.fromarray(synthetic(40, 24, 3, gen=g)).quantize(200).save(OUT / "conv_interlaced.gif")   # PIL interlaces >= 16x16
    pal = [int(v) for v in g.integers(0, 256, 16 * 3)]
    (OUT / "conv_offset_trns.gif").write_bytes(
        gif_raw((30, 20), (5, 3, 16, 10), g.integers(0, 16, (10, 16)), local_palette=pal,
                global_palette=[int(v) for v in g.integers(0, 256, 4 * 3)], transparent=2))
    (OUT / "conv_grow.gif").write_bytes(
        gif_raw((10, 8), (4, 2, 12, 9), g.integers(0, 4, (9, 12)), global_palette=pal[:12]))
    (OUT / "conv_nopalette.gif").write_bytes(gif_raw((12, 7), (0, 0, 12, 7), g.integers(0, 256, (7, 12))))
    return ["conv_anim.gif", "conv_interlaced.gif", "conv_offset_trns.gif", "conv_grow.gif", "conv_nopalette.gif"]


def iccp_case():
    """A PNG carrying the ICC profile that libpng reports as "known incorrect sRGB profile" (the one in
    scikit-image's chelsea.png, Debian python3-skimage, and in many photos): decoding it must print nothing."""
    chelsea = Path("/usr/lib/python3/dist-packages/skimage/data/chelsea.png").read_bytes()
    profile = Image.open(io.BytesIO(chelsea)).info["icc_profile"]
    img = Image.fromarray(synthetic(16, 12, 3, gen=np.random.default_rng(7)))
    img.save(OUT / "conv_iccp_srgb.png", icc_profile=profile)
    return ["conv_iccp_srgb.png"]


def write_tensor(t, name):
    a = t.detach().numpy().astype("<f4")
    with open(OUT / name, "wb") as f:
        f.write(b"VITT" + struct.pack("<I", a.ndim) + struct.pack(f"<{a.ndim}I", *a.shape) + a.tobytes())


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()

    # --- sources
    save_png(synthetic(40, 30, 3), "src_rgb_40x30.png")
    save_png(synthetic(57, 91, 3), "src_rgb_57x91.png")
    save_png(synthetic(57, 91, 1), "src_gray_57x91.png")
    Image.fromarray(synthetic(64, 48, 3, noise=10)).save(OUT / "src_photo_64x48.jpg", quality=90)

    # --- PIL resize, bit-exact references
    sizes = {
        "src_rgb_40x30.png": [(17, 13), (71, 53), (40, 20), (23, 30), (61, 19), (7, 5)],
        "src_rgb_57x91.png": [(28, 45), (9, 14), (64, 102)],
        "src_gray_57x91.png": [(28, 45), (70, 112), (13, 91)],
        "src_photo_64x48.jpg": [(32, 24), (83, 62)],
    }
    lines = []
    for src, dims in sizes.items():
        im = Image.open(OUT / src)
        im = im.convert("L" if im.mode == "L" else "RGB")
        for w, h in dims:
            for fname, f in FILTERS.items():
                out = f"resize_{Path(src).stem[4:]}_{fname}_{w}x{h}.png"
                save_png(im.resize((w, h), f), out)
                lines.append(f"{src} {fname} {w} {h} {out}")
    (OUT / "resize_cases.txt").write_text("\n".join(lines) + "\n")

    # --- torchvision eval transforms
    imagenet = ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    cases = [  # src, in_chans, resize, crop, filter, mean, std
        ("src_rgb_57x91.png", 3, 40, 32, "bicubic", *imagenet),   # 40x63, top = round(15.5) = 16
        ("src_rgb_40x30.png", 3, 20, 23, "bilinear", *imagenet),  # 26x20: pad rows 1+2, left round(1.5)=2
        ("src_rgb_57x91.png", 1, 48, 40, "nearest", (0.5,), (0.5,)),
        ("src_photo_64x48.jpg", 3, 36, 32, "bicubic", *imagenet),
        ("src_rgb_40x30.png", 3, 30, 24, "bicubic", *imagenet),   # shorter side already 30: no resize
    ]
    lines = []
    for i, (src, chans, size, crop, fname, mean, std) in enumerate(cases):
        im = Image.open(OUT / src).convert("RGB")
        if chans == 1:
            im = im.convert("L")
        tf = transforms.Compose([
            transforms.Resize(size, interpolation=TV_FILTERS[fname]),
            transforms.CenterCrop(crop),
            transforms.ToTensor(),
            transforms.Normalize(mean, std),
        ])
        out = f"transform_{i}_{Path(src).stem[4:]}.bin"
        write_tensor(tf(im), out)
        lines.append(f"{src} {chans} {size} {crop} {fname} {','.join(map(str, mean))} "
                     f"{','.join(map(str, std))} {out}")
    (OUT / "transform_cases.txt").write_text("\n".join(lines) + "\n")

    # --- decoding conversions (expected = PIL convert("RGB") after exif_transpose)
    conv = []
    blocks = np.zeros((16, 24, 3), np.uint8)  # distinct flat blocks survive JPEG and show orientation
    blocks[:8, :8] = (255, 0, 0); blocks[:8, 8:16] = (0, 255, 0); blocks[:8, 16:] = (0, 0, 255)
    blocks[8:, :8] = (255, 255, 0); blocks[8:, 8:16] = (0, 255, 255); blocks[8:, 16:] = (40, 40, 40)
    for o in range(1, 9):
        ex = Image.Exif()
        ex[0x0112] = o
        Image.fromarray(blocks).save(OUT / f"exif_o{o}.jpg", quality=95, exif=ex.tobytes())
        conv.append(f"exif_o{o}.jpg")
    ex = Image.Exif()
    ex[0x0112] = 6
    g = synthetic(12, 8, 1, noise=0)
    Image.fromarray(g).save(OUT / "exif_gray_o6.jpg", quality=95, exif=ex.tobytes())
    Image.fromarray(blocks).save(OUT / "exif_o6.webp", lossless=True, exif=ex.tobytes())
    Image.fromarray(blocks).save(OUT / "exif_o6.png", exif=ex.tobytes())
    conv += ["exif_gray_o6.jpg", "exif_o6.webp", "exif_o6.png"]

    rgba = np.dstack([synthetic(20, 10, 3), rng.integers(0, 256, (10, 20), dtype=np.uint8)])
    save_png(rgba, "conv_rgba.png")
    la = Image.fromarray(np.dstack([synthetic(20, 10, 1), rng.integers(0, 256, (10, 20), dtype=np.uint8)]), "LA")
    save_png(la, "conv_la.png")
    pal = Image.fromarray(synthetic(20, 10, 3)).quantize(16)
    pal.save(OUT / "conv_palette_trns.png", transparency=3)
    save_png(synthetic(20, 10, 1), "conv_gray.png")
    Image.fromarray(synthetic(20, 10, 1) > 128).save(OUT / "conv_bilevel.png")
    g16 = rng.integers(0, 65536, (10, 20)).astype(np.uint16)
    g16[0, :8] = [0, 1, 127, 255, 256, 1000, 32768, 65535]
    (OUT / "conv_gray16.png").write_bytes(png16(g16, 0))
    (OUT / "conv_rgb16.png").write_bytes(png16(rng.integers(0, 65536, (10, 20, 3)).astype(np.uint16), 2))
    (OUT / "conv_rgba16.png").write_bytes(png16(rng.integers(0, 65536, (10, 20, 4)).astype(np.uint16), 6))
    Image.fromarray(g16).save(OUT / "exif_gray16_o6.png", exif=ex.tobytes())
    Image.fromarray(synthetic(20, 10, 3)).save(OUT / "conv_rgb.bmp")
    Image.fromarray(synthetic(20, 10, 3)).save(OUT / "conv_rgb.tif")
    Image.fromarray(synthetic(20, 10, 3)).save(OUT / "conv_rgb.webp", lossless=True)
    conv += ["conv_rgba.png", "conv_la.png", "conv_palette_trns.png", "conv_gray.png", "conv_bilevel.png",
             "conv_gray16.png", "conv_rgb16.png", "conv_rgba16.png", "exif_gray16_o6.png",
             "conv_rgb.bmp", "conv_rgb.tif", "conv_rgb.webp"]
    conv += gif_cases()
    conv += iccp_case()
    lines = []
    for src in conv:
        im = Image.open(OUT / src)
        expected = f"expect_{Path(src).stem}_{Path(src).suffix[1:]}.png"
        save_png(ImageOps.exif_transpose(im).convert("RGB"), expected)
        lines.append(f"{src} {expected}")
    (OUT / "convert_cases.txt").write_text("\n".join(lines) + "\n")

    # CMYK JPEG: OpenCV's CMYK->RGB differs from PIL's by rounding; the test allows a small difference.
    Image.fromarray(synthetic(20, 10, 3)).convert("CMYK").save(OUT / "conv_cmyk.jpg", quality=95)
    save_png(Image.open(OUT / "conv_cmyk.jpg").convert("RGB"), "expect_conv_cmyk_jpg.png")

    # --- convert("L")
    lines = []
    for src in ["src_rgb_57x91.png", "src_photo_64x48.jpg"]:
        out = f"gray_{Path(src).stem[4:]}.png"
        save_png(Image.open(OUT / src).convert("RGB").convert("L"), out)
        lines.append(f"{src} {out}")
    (OUT / "gray_cases.txt").write_text("\n".join(lines) + "\n")

    total = sum(p.stat().st_size for p in OUT.iterdir())
    print(f"wrote {len(list(OUT.iterdir()))} files, {total} bytes, to {OUT}")


if __name__ == "__main__":
    main()
