"""Login sessions as columns: one row per session, already de-duplicated across ICON HA copies.

Conventions (SPEC §4.1): times are UTC epoch seconds; `terminated` is -1 while the session is
open; `person`, `place` and `dn` are DBIDs with -1 (or 0, or any value <= 0) meaning none;
`provider_tag` is 1 (T-Server/SIP Server), 2 (Interaction Server) or 0 when NULL."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lrm.domain._arrays import I8, I64

OPEN = -1
NONE = -1
TAG_NULL = 0
TAG_VOICE = 1
TAG_MULTIMEDIA = 2


@dataclass(frozen=True)
class SessionTable:
    """Columnar login sessions. Construct with `SessionTable.from_columns` to coerce types."""

    created: I64
    terminated: I64
    person: I64
    place: I64
    dn: I64
    provider_tag: I8

    def __post_init__(self) -> None:
        columns: dict[str, npt.NDArray[np.generic]] = {
            "created": self.created, "terminated": self.terminated, "person": self.person,
            "place": self.place, "dn": self.dn, "provider_tag": self.provider_tag}
        lengths = {name: col.shape for name, col in columns.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"session columns differ in length: {lengths}")
        for name, col in columns.items():
            if col.ndim != 1:
                raise ValueError(f"session column {name} is not one-dimensional")
            expected = np.int8 if name == "provider_tag" else np.int64
            if col.dtype != expected:
                raise ValueError(f"session column {name} is {col.dtype}, expected {expected}")

    def __len__(self) -> int:
        return int(self.created.size)

    @classmethod
    def from_columns(cls, *, created: npt.ArrayLike, terminated: npt.ArrayLike,
                     person: npt.ArrayLike, place: npt.ArrayLike, dn: npt.ArrayLike,
                     provider_tag: npt.ArrayLike) -> SessionTable:
        """Build from any array-likes (lists, arrays of another integer type)."""
        def col(values: npt.ArrayLike) -> I64:
            return np.ascontiguousarray(np.asarray(values, dtype=np.int64).reshape(-1))
        return cls(created=col(created), terminated=col(terminated), person=col(person),
                   place=col(place), dn=col(dn),
                   provider_tag=np.ascontiguousarray(
                       np.asarray(provider_tag, dtype=np.int8).reshape(-1)))

    @classmethod
    def empty(cls) -> SessionTable:
        return cls.from_columns(created=[], terminated=[], person=[], place=[], dn=[],
                                provider_tag=[])
