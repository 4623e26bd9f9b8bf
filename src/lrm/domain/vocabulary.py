"""String attributes encoded as small integers, so that rules compare integers.

One `Vocabulary` is shared by every configuration document of a count and by the rules
evaluated against it. Text is compared after `normalise` (trimmed, case-folded): a rule saying
`"Workspace"` matches a person whose desktop is `"workspace "`.

- `switch_type` and `desktop` values get codes as documents are read; code 0 is "missing"
  (no DN, unknown switch, no desktop property).
- `media` is a bit mask over a fixed, ordered list of media names: the names the catalogue's
  rules mention. Media nobody asks about are not tracked (they cannot change any count)."""

from __future__ import annotations

MISSING = 0
UNKNOWN_CODE = -1
MAX_MEDIA = 62


def normalise(text: str) -> str:
    """The comparison form of a configuration or rule string."""
    return text.strip().casefold()


class Codes:
    """A growing mapping from normalised text to integer codes (0 = the empty string)."""

    def __init__(self) -> None:
        self._codes: dict[str, int] = {"": MISSING}

    def code(self, text: str) -> int:
        """The code of `text`, assigning the next free one on first sight."""
        key = normalise(text)
        found = self._codes.get(key)
        if found is None:
            found = len(self._codes)
            self._codes[key] = found
        return found

    def lookup(self, text: str) -> int:
        """The code of `text`, or UNKNOWN_CODE (-1, which no value carries) if never seen."""
        return self._codes.get(normalise(text), UNKNOWN_CODE)

    def __len__(self) -> int:
        return len(self._codes)


class Vocabulary:
    """The codes of one count: switch types, desktops, and the tracked media."""

    def __init__(self, media: tuple[str, ...] = ()) -> None:
        names: list[str] = []
        for name in media:
            key = normalise(name)
            if key and key not in names:
                names.append(key)
        if len(names) > MAX_MEDIA:
            raise ValueError(f"rules mention {len(names)} media; at most {MAX_MEDIA} are supported")
        self.media: tuple[str, ...] = tuple(names)
        self._media_bits = {name: 1 << i for i, name in enumerate(names)}
        self.switch_types = Codes()
        self.desktops = Codes()

    def media_bit(self, name: str) -> int:
        """The bit of a tracked medium. Raises KeyError for a medium this vocabulary does not
        track (the count was resolved for another catalogue)."""
        key = normalise(name)
        if key not in self._media_bits:
            raise KeyError(f"medium {name!r} is not tracked by this count (tracked: "
                           f"{', '.join(self.media) or 'none'})")
        return self._media_bits[key]

    def media_mask(self, media: str | list[str] | tuple[str, ...] | None) -> int:
        """The bit mask of a `userProperties.lrm.media` value ("chat,email" or a list); media
        that are not tracked are ignored."""
        if media is None:
            return 0
        parts = media.split(",") if isinstance(media, str) else [str(m) for m in media]
        mask = 0
        for part in parts:
            mask |= self._media_bits.get(normalise(part), 0)
        return mask
