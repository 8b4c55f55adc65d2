#!/usr/bin/env bash
# Regenerates the committed seed corpora of the fuzz targets in tests/fuzz/corpus/<target>/:
#   safetensors  valid weights of fuzz_safetensors.cpp's small config in F32/F16/BF16, one with NaNs,
#                one with every other dtype, an empty header
#   config       valid configs covering every key (labels file, inline labels, defaults, avg pool)
#   image        small images of every format OpenCV 4.6 reads here: copies of tests/fixtures/preprocess
#                plus PNM/PAM/PFM/Sun raster/HDR/EXR/JPEG 2000/TIFF variants written by cv::imwrite
#   gif, hdr     the GIF and Radiance HDR files of the image corpus, for the targets that fuzz vit's own
#                decoders directly (flat and run-length encoded HDR scanlines)
# Needs bash, g++ and OpenCV's headers (pkg-config opencv4). Usage: tests/fuzz/make_corpus.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
src=$(cd "$here/../.." && pwd)
out=$here/corpus
# Inputs that fuzzing found (the crash since fixed) are not generated here: they are kept as they are.
found=(image/gif_zero_width_frame.gif)
keep=$(mktemp -d)
for f in "${found[@]}"; do [[ -f $out/$f ]] && cp "$out/$f" "$keep/"; done
rm -rf "$out"
mkdir -p "$out/safetensors" "$out/config" "$out/image"
for f in "${found[@]}"; do [[ -f $keep/${f##*/} ]] && cp "$keep/${f##*/}" "$out/$f"; done
rm -rf "$keep"

# ---- safetensors
# Bytes of a little-endian u64.
u64le() {
  local v=$1 i
  for i in 0 1 2 3 4 5 6 7; do printf "\\$(printf %03o $(((v >> (8 * i)) & 255)))"; done
}
# repeat N BYTES: BYTES (a printf escape string) N times.
repeat() {
  local i
  for ((i = 0; i < $1; i++)); do printf "$2"; done
}
# safetensors FILE META ENTRY...: ENTRY is NAME:DTYPE:DIMS:ELEMENT with DIMS comma-separated (empty for a
# scalar) and ELEMENT the printf escape of one element's bytes; the header is padded to 8 bytes like the
# Python writer does.
safetensors() {
  local file=$1 meta=$2
  shift 2
  local header="{" sep="" off=0 data="" e name dtype dims elem n d size
  [[ -n $meta ]] && header+="\"__metadata__\":$meta" && sep=","
  for e in "$@"; do
    IFS=: read -r name dtype dims elem <<<"$e"
    n=1
    for d in ${dims//,/ }; do n=$((n * d)); done
    size=$(($(printf "$elem" | wc -c) * n))
    header+="$sep\"$name\":{\"dtype\":\"$dtype\",\"shape\":[$dims],\"data_offsets\":[$off,$((off + size))]}"
    sep=","
    off=$((off + size))
  done
  header+="}"
  while ((${#header} % 8)); do header+=" "; done
  {
    u64le ${#header}
    printf '%s' "$header"
    for e in "$@"; do
      IFS=: read -r name dtype dims elem <<<"$e"
      n=1
      for d in ${dims//,/ }; do n=$((n * d)); done
      repeat $n "$elem"
    done
  } >"$file"
}
# The tensor table of the small config (image 4, patch 2, 3 channels, dim 4, depth 1, 2 heads, mlp 8,
# 2 classes, class token, qkv bias): NAME:DIMS.
small_table=(patch_embed.proj.weight:4,3,2,2 patch_embed.proj.bias:4 cls_token:1,1,4 pos_embed:1,5,4
  blocks.0.norm1.weight:4 blocks.0.norm1.bias:4 blocks.0.attn.qkv.weight:12,4 blocks.0.attn.qkv.bias:12
  blocks.0.attn.proj.weight:4,4 blocks.0.attn.proj.bias:4 blocks.0.norm2.weight:4 blocks.0.norm2.bias:4
  blocks.0.mlp.fc1.weight:8,4 blocks.0.mlp.fc1.bias:8 blocks.0.mlp.fc2.weight:4,8 blocks.0.mlp.fc2.bias:4
  norm.weight:4 norm.bias:4 head.weight:2,4 head.bias:2)
# small_weights FILE DTYPE ELEMENT [NAN_TENSOR NAN_ELEMENT]
small_weights() {
  local file=$1 dtype=$2 elem=$3 nan_name=${4:-} nan_elem=${5:-} entries=() t
  for t in "${small_table[@]}"; do
    local e=$elem
    [[ ${t%%:*} == "$nan_name" ]] && e=$nan_elem
    entries+=("${t%%:*}:$dtype:${t#*:}:$e")
  done
  safetensors "$file" '{"format":"pt"}' "${entries[@]}"
}
st=$out/safetensors
small_weights "$st/small_f32.safetensors" F32 '\x00\x00\x80\x3e'                  # 0.25
small_weights "$st/small_f16.safetensors" F16 '\x00\x34'                          # 0.25
small_weights "$st/small_bf16.safetensors" BF16 '\x80\x3e'                        # 0.25
small_weights "$st/small_nan.safetensors" F32 '\x00\x00\x80\x3e' head.bias '\x00\x00\xc0\x7f'
safetensors "$st/dtypes.safetensors" '' 'a:F64:2:\x00\x00\x00\x00\x00\x00\xf0\x3f' 'b:I64:1:\x01\x00\x00\x00\x00\x00\x00\x00' \
  'c:I32:2,1:\x02\x00\x00\x00' 'd:I16:3:\x03\x00' 'e:I8::\x04' 'f:U8:0:\x05' 'g:BOOL:2:\x01' 'h:F16:1,1:\x00\x7c'
safetensors "$st/empty.safetensors" ''

# ---- config
cf=$out/config
cat >"$cf/full.json" <<'JSON'
{"model": {"image_size": 32, "patch_size": 16, "in_chans": 3, "embed_dim": 32, "depth": 2, "num_heads": 4,
           "mlp_dim": 64, "qkv_bias": true, "layer_norm_eps": 1e-06, "num_classes": 3, "class_token": true,
           "global_pool": "token", "fc_norm": false},
 "preprocess": {"resize": 36, "crop": 32, "interpolation": "bicubic", "antialias": true,
                "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
 "labels": "labels.txt", "weights": "model.safetensors", "name": "seed", "description": "all keys"}
JSON
cat >"$cf/inline_avg_gray.json" <<'JSON'
{"model": {"image_size": 28, "patch_size": 7, "in_chans": 1, "embed_dim": 12, "depth": 1, "num_heads": 3,
           "mlp_dim": 24, "qkv_bias": false, "num_classes": 2, "class_token": false, "global_pool": "avg",
           "fc_norm": true},
 "preprocess": {"resize": 28, "crop": 28, "interpolation": "nearest", "antialias": false, "mean": [0.5], "std": [0.5]},
 "labels": ["T-shirt/top", "Trouser"], "weights": "/abs/w.safetensors"}
JSON
cat >"$cf/minimal.json" <<'JSON'
{"model": {"image_size": 224, "patch_size": 16, "embed_dim": 192, "depth": 12, "num_heads": 3, "mlp_dim": 768,
           "num_classes": 1000}}
JSON
cat >"$cf/bilinear_nolabels.json" <<'JSON'
{"model":{"image_size":8,"patch_size":4,"embed_dim":4,"depth":1,"num_heads":2,"mlp_dim":8,"num_classes":3,
"layer_norm_eps":0.001},"preprocess":{"resize":9,"crop":8,"interpolation":"bilinear"}}
JSON
cp "$src/tests/fixtures/tiny_rgb_p16/config.json" "$cf/tiny_rgb_p16.json"

# ---- image
im=$out/image
pre=$src/tests/fixtures/preprocess
for f in conv_bilevel.png conv_cmyk.jpg conv_gray16.png conv_la.png conv_palette_trns.png conv_rgb.bmp \
  conv_rgb.tif conv_rgb.webp conv_rgba16.png exif_gray_o6.jpg exif_o6.jpg exif_o6.png exif_o6.webp \
  exif_gray16_o6.png conv_anim.gif conv_interlaced.gif conv_offset_trns.gif conv_nopalette.gif; do
  cp "$pre/$f" "$im/$f"
done
printf 'GIF89a\x01\x00\x01\x00\x00\x00\x00;' >"$im/tiny.gif"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/gen.cpp" <<'CPP'
// Small images in the formats that have no copy among the fixtures, written by OpenCV's own encoders.
#include <opencv2/imgcodecs.hpp>
#include <string>
int main(int argc, char** argv) {
    const std::string dir = argv[1];
    cv::Mat rgb(5, 7, CV_8UC3), gray(6, 3, CV_8UC1), g16(4, 4, CV_16UC1), f32(3, 5, CV_32FC3);
    cv::randu(rgb, 0, 256); cv::randu(gray, 0, 256); cv::randu(g16, 0, 65536); cv::randu(f32, 0.0f, 1.5f);
    cv::imwrite(dir + "/rgb.ppm", rgb);
    cv::imwrite(dir + "/gray.pgm", gray);
    cv::imwrite(dir + "/gray16.pgm", g16);
    cv::imwrite(dir + "/ascii.ppm", rgb, {cv::IMWRITE_PXM_BINARY, 0});
    cv::imwrite(dir + "/bits.pbm", gray > 128);
    cv::imwrite(dir + "/rgb.pam", rgb);
    cv::imwrite(dir + "/rgb.pfm", f32);
    cv::imwrite(dir + "/rgb.ras", rgb);
    cv::imwrite(dir + "/rgb.hdr", f32);
    cv::Mat wide(3, 20, CV_32FC3);  // 8 to 32767 wide: run-length encoded scanlines
    cv::randu(wide, 0.0f, 4.0f);
    cv::imwrite(dir + "/rgb_rle.hdr", wide);
    cv::imwrite(dir + "/rgb.exr", f32);
    cv::Mat big(32, 40, CV_8UC3);  // the JPEG 2000 encoder needs room for its resolution levels
    cv::randu(big, 0, 256);
    cv::imwrite(dir + "/rgb.jp2", big);
    cv::imwrite(dir + "/gray16.tif", g16);
    cv::imwrite(dir + "/rgb_lzw.tif", rgb, {cv::IMWRITE_TIFF_COMPRESSION, 5});
    cv::imwrite(dir + "/rgb_progressive.jpg", rgb, {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
    cv::imwrite(dir + "/rgb_lossless.webp", rgb, {cv::IMWRITE_WEBP_QUALITY, 101});
    cv::imwrite(dir + "/gray.bmp", gray);
    return 0;
}
CPP
# shellcheck disable=SC2046
g++ -std=c++17 -O1 -o "$tmp/gen" "$tmp/gen.cpp" $(pkg-config --cflags --libs opencv4)
"$tmp/gen" "$im"
mkdir -p "$out/gif" "$out/hdr"
cp "$im"/*.gif "$out/gif/"
cp "$im"/*.hdr "$out/hdr/"
du -sh "$out"
