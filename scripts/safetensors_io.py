"""Minimal reader/writer for the safetensors format, so the scripts need no `safetensors` package.

Layout: u64 little-endian header length N, N bytes of JSON header
{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}} padded with spaces to a
multiple of 8, then the raw little-endian tensor data (offsets are relative to the end of the header).
Writing is deterministic: tensors are laid out in sorted name order and the JSON has sorted keys.
"""
import json
import struct
import sys

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, numpy dtype of the same width used to move the bytes)
_DTYPES = {
    "F64": (torch.float64, np.float64),
    "F32": (torch.float32, np.float32),
    "F16": (torch.float16, np.float16),
    "BF16": (torch.bfloat16, np.int16),     # numpy has no bfloat16: move the bits as int16
    "I64": (torch.int64, np.int64),
    "I32": (torch.int32, np.int32),
    "I16": (torch.int16, np.int16),
    "I8": (torch.int8, np.int8),
    "U8": (torch.uint8, np.uint8),
    "BOOL": (torch.bool, np.bool_),
}
_NAME_OF = {t: name for name, (t, _) in _DTYPES.items()}

if sys.byteorder != "little":
    raise RuntimeError("safetensors_io assumes a little-endian host")


def _tensor_bytes(t):
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def save_file(tensors, path, metadata=None):
    """Writes {name: torch.Tensor} to `path`; metadata is an optional {str: str} dict."""
    header = {}
    if metadata:
        for k, v in metadata.items():
            if not isinstance(k, str) or not isinstance(v, str):
                raise TypeError(f"safetensors metadata must map str to str, got {k!r}: {v!r}")
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"tensor '{name}': expected torch.Tensor, got {type(t).__name__}")
        if t.dtype not in _NAME_OF:
            raise TypeError(f"tensor '{name}': unsupported dtype {t.dtype}")
        data = _tensor_bytes(t)
        header[name] = {"dtype": _NAME_OF[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    hjson += b" " * (-len(hjson) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for data in blobs:
            f.write(data)


def read_header(path):
    """Returns (header dict without __metadata__, metadata dict, byte offset of the data section)."""
    with open(path, "rb") as f:
        raw = f.read(8)
        if len(raw) != 8:
            raise ValueError(f"{path}: too short for a safetensors file")
        (n,) = struct.unpack("<Q", raw)
        hjson = f.read(n)
        if len(hjson) != n:
            raise ValueError(f"{path}: header length {n} runs past the end of the file")
    header = json.loads(hjson.decode("utf-8"))
    metadata = header.pop("__metadata__", None) or {}
    return header, metadata, 8 + n


def load_file(path, with_metadata=False):
    """Reads a safetensors file into {name: torch.Tensor} (and its metadata when with_metadata)."""
    header, metadata, start = read_header(path)
    with open(path, "rb") as f:
        buf = f.read()
    data_len = len(buf) - start
    out = {}
    for name, info in header.items():
        dtype = info["dtype"]
        if dtype not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has unsupported dtype {dtype}")
        tdtype, npdtype = _DTYPES[dtype]
        shape = [int(s) for s in info["shape"]]
        begin, end = info["data_offsets"]
        count = int(np.prod(shape)) if shape else 1
        need = count * np.dtype(npdtype).itemsize
        if end - begin != need or end > data_len or begin < 0:
            raise ValueError(f"{path}: tensor '{name}' {dtype}{shape} needs {need} bytes, "
                             f"data_offsets are [{begin}, {end}] in a {data_len}-byte data section")
        arr = np.frombuffer(buf, dtype=npdtype, count=count, offset=start + begin).reshape(shape).copy()
        t = torch.from_numpy(arr)
        if tdtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        out[name] = t
    return (out, metadata) if with_metadata else out
