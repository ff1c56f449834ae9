"""The codec walk (value <-> JSON tree): compiled and pure twins side by side.

`size` is the number of rows in the payload; "json" rows hold plain JSON
types, "typed" rows the tagged ones (UUID, datetime, Decimal, enum,
dataclass, Struct).
"""

from __future__ import annotations

from typing import Any

import orjson

from benchmarks._inputs import SIZES, json_rows, load_twin, make_codec, typed_rows

_PAYLOADS = {"json": json_rows, "typed": typed_rows}


class _Codec:
    params: Any = (["c", "py"], SIZES, list(_PAYLOADS))
    param_names = ["impl", "size", "payload"]

    def setup(self, impl: str, size: int, payload: str) -> None:
        self.codec = make_codec(load_twin("codec", impl))
        self.value = _PAYLOADS[payload](size)
        # the tree as a worker gets it: parsed from the stored text
        self.tree = orjson.loads(orjson.dumps(self.codec.encode(self.value)))


class TimeEncode(_Codec):
    def time_encode(self, impl: str, size: int, payload: str) -> None:
        self.codec.encode(self.value)


class TimeDecode(_Codec):
    def time_decode(self, impl: str, size: int, payload: str) -> None:
        self.codec.decode(self.tree)


class TimeRoundTrip(_Codec):
    """What a send plus a worker pay: encode, write, parse, decode."""

    def time_round_trip(self, impl: str, size: int, payload: str) -> None:
        text = orjson.dumps(self.codec.encode(self.value))
        self.codec.decode(orjson.loads(text))
