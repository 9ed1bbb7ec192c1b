"""Convert a CTranslate2 Whisper `model.bin` into an openai-whisper checkpoint.

Lets the openai-whisper engine run offline on the very weights faster-whisper uses. The
CTranslate2 file is: version, spec name, revision, then named variables (rank, dims, dtype,
raw bytes), then aliases. Variables map one-to-one onto openai-whisper's state dict, except
the fused self-attention QKV (split) and LayerNorm gamma/beta (renamed weight/bias).
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import numpy as np

_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # index = CTranslate2 type id


def _read_string(fh) -> str:
    (length,) = struct.unpack("<H", fh.read(2))
    return fh.read(length)[:-1].decode("utf-8")


def read_ct2(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """All variables of a CTranslate2 model.bin, and its aliases."""
    variables: dict[str, np.ndarray] = {}
    with Path(path).open("rb") as fh:
        (version,) = struct.unpack("<I", fh.read(4))
        if version < 5:
            raise ValueError(f"unsupported CTranslate2 binary version {version}")
        _read_string(fh)  # spec name
        fh.read(4)  # revision
        (count,) = struct.unpack("<I", fh.read(4))
        for _ in range(count):
            name = _read_string(fh)
            (rank,) = struct.unpack("<B", fh.read(1))
            shape = struct.unpack(f"<{rank}I", fh.read(4 * rank)) if rank else ()
            (type_id,) = struct.unpack("<B", fh.read(1))
            (nbytes,) = struct.unpack("<I", fh.read(4))
            dtype = _DTYPES[type_id]
            if dtype is None:
                raise ValueError(f"{name}: bfloat16 weights are not supported by this converter")
            variables[name] = np.frombuffer(fh.read(nbytes), dtype=dtype).reshape(shape)
        aliases = {}
        tail = fh.read(4)
        if len(tail) == 4:
            for _ in range(struct.unpack("<I", tail)[0]):
                alias = _read_string(fh)
                aliases[alias] = _read_string(fh)
    return variables, aliases


def _layer_count(variables: dict, prefix: str) -> int:
    pattern = re.compile(rf"^{prefix}/layer_(\d+)/")
    return len({m.group(1) for k in variables if (m := pattern.match(k))})


def _map_attention(out: dict, src: dict, ct2: str, dst: str, fused_qkv: bool, state: int) -> None:
    if fused_qkv:  # self-attention: one [3*state, state] projection
        w, b = src[f"{ct2}/linear_0/weight"], src[f"{ct2}/linear_0/bias"]
        out[f"{dst}.query.weight"], out[f"{dst}.key.weight"], out[f"{dst}.value.weight"] = np.split(w, 3)
        out[f"{dst}.query.bias"], _, out[f"{dst}.value.bias"] = np.split(b, 3)
        out_proj = "linear_1"
    else:  # cross-attention: query, then fused [2*state, state] key/value
        out[f"{dst}.query.weight"] = src[f"{ct2}/linear_0/weight"]
        out[f"{dst}.query.bias"] = src[f"{ct2}/linear_0/bias"]
        kv_w, kv_b = src[f"{ct2}/linear_1/weight"], src[f"{ct2}/linear_1/bias"]
        out[f"{dst}.key.weight"], out[f"{dst}.value.weight"] = kv_w[:state], kv_w[state:]
        out[f"{dst}.value.bias"] = kv_b[state:]
        out_proj = "linear_2"
    out[f"{dst}.out.weight"] = src[f"{ct2}/{out_proj}/weight"]
    out[f"{dst}.out.bias"] = src[f"{ct2}/{out_proj}/bias"]
    ln_name = dst.rsplit(".", 1)[0] + "." + dst.rsplit(".", 1)[1] + "_ln"
    out[f"{ln_name}.weight"] = src[f"{ct2}/layer_norm/gamma"]
    out[f"{ln_name}.bias"] = src[f"{ct2}/layer_norm/beta"]


def _map_ffn(out: dict, src: dict, ct2: str, dst: str) -> None:
    out[f"{dst}.mlp.0.weight"] = src[f"{ct2}/ffn/linear_0/weight"]
    out[f"{dst}.mlp.0.bias"] = src[f"{ct2}/ffn/linear_0/bias"]
    out[f"{dst}.mlp.2.weight"] = src[f"{ct2}/ffn/linear_1/weight"]
    out[f"{dst}.mlp.2.bias"] = src[f"{ct2}/ffn/linear_1/bias"]
    out[f"{dst}.mlp_ln.weight"] = src[f"{ct2}/ffn/layer_norm/gamma"]
    out[f"{dst}.mlp_ln.bias"] = src[f"{ct2}/ffn/layer_norm/beta"]


def ct2_to_state_dict(variables: dict[str, np.ndarray]) -> tuple[dict, dict]:
    """(dims, state dict as numpy arrays) for openai-whisper's `Whisper` model."""
    state, n_mels, _ = variables["encoder/conv1/weight"].shape
    dims = {
        "n_mels": n_mels,
        "n_audio_ctx": variables["encoder/position_encodings/encodings"].shape[0],
        "n_audio_state": state,
        "n_audio_head": int(variables["encoder/num_heads"]),
        "n_audio_layer": _layer_count(variables, "encoder"),
        "n_vocab": variables["decoder/embeddings/weight"].shape[0],
        "n_text_ctx": variables["decoder/position_encodings/encodings"].shape[0],
        "n_text_state": variables["decoder/embeddings/weight"].shape[1],
        "n_text_head": int(variables["decoder/num_heads"]),
        "n_text_layer": _layer_count(variables, "decoder"),
    }
    out: dict[str, np.ndarray] = {}
    for name in ("conv1", "conv2"):
        out[f"encoder.{name}.weight"] = variables[f"encoder/{name}/weight"]
        out[f"encoder.{name}.bias"] = variables[f"encoder/{name}/bias"]
    out["encoder.positional_embedding"] = variables["encoder/position_encodings/encodings"]
    out["encoder.ln_post.weight"] = variables["encoder/layer_norm/gamma"]
    out["encoder.ln_post.bias"] = variables["encoder/layer_norm/beta"]
    for i in range(dims["n_audio_layer"]):
        src, dst = f"encoder/layer_{i}", f"encoder.blocks.{i}"
        _map_attention(out, variables, f"{src}/self_attention", f"{dst}.attn", True, state)
        _map_ffn(out, variables, src, dst)
    out["decoder.token_embedding.weight"] = variables["decoder/embeddings/weight"]
    out["decoder.positional_embedding"] = variables["decoder/position_encodings/encodings"]
    out["decoder.ln.weight"] = variables["decoder/layer_norm/gamma"]
    out["decoder.ln.bias"] = variables["decoder/layer_norm/beta"]
    for i in range(dims["n_text_layer"]):
        src, dst = f"decoder/layer_{i}", f"decoder.blocks.{i}"
        _map_attention(out, variables, f"{src}/self_attention", f"{dst}.attn", True, dims["n_text_state"])
        _map_attention(out, variables, f"{src}/attention", f"{dst}.cross_attn", False, dims["n_text_state"])
        _map_ffn(out, variables, src, dst)
    return dims, out


def convert_ct2_to_openai(model_dir: Path, target: Path) -> Path:
    """Write an openai-whisper checkpoint ({'dims', 'model_state_dict'}) built from model_dir."""
    import torch  # heavy (torch): loaded when a model first runs

    variables, _ = read_ct2(Path(model_dir) / "model.bin")
    config = json.loads((Path(model_dir) / "config.json").read_text())
    dims, arrays = ct2_to_state_dict(variables)
    checkpoint = {
        "dims": dims,
        "model_state_dict": {k: torch.from_numpy(np.array(v)) for k, v in arrays.items()},
        "alignment_heads": config.get("alignment_heads"),
    }
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    torch.save(checkpoint, partial)
    partial.replace(target)
    return target
