"""Writes PyTorch tensors as a safetensors file (8-byte header length, JSON header,
little-endian f32 data), for the peer scripts that hand their trained weights to
`warmstart eval` under warmstart's parameter names (`graphsage_pyg.py`, `two_tower_torch.py`)."""

import json


def save_safetensors(path, tensors):
    """Writes `tensors` (name -> torch tensor) to `path` as f32 safetensors."""
    header, blobs, offset = {}, [], 0
    for name in sorted(tensors):
        data = tensors[name].numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(len(text).to_bytes(8, "little"))
        f.write(text)
        for blob in blobs:
            f.write(blob)
