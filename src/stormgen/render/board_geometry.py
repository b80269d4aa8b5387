"""The board's geometry: its notes, tracks, lanes and arrows, and where each stands.

:mod:`stormgen.render.board` decides which note goes in which cell of a lane (a track,
a band, a column); :func:`place_lane` turns those cells into coordinates, note heights
(from the estimated wrapping of their text) and arrow paths, in CSS pixels.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from stormgen.render.board_notes import wrapped_lines
from stormgen.render.diagram import COLOURS

# Geometry, in CSS pixels.
NOTE_W = 150
NOTE_H = 62
SMALL_H = 34  # actors and hotspots
COL_GAP = 26
ROW_GAP = 10
HEADER_W = 190  # the track headers' column
PAD = 16
LANE_TITLE_H = 34
LANE_GAP = 18
LANE_X = 8
TRACK_PAD = 8
BAND_GAP = 6  # between two bands of one aggregate's row
CAST_H = 46  # an actor in the strip on top, with its subtitle
# Wrapping, estimated on the safe side (wide glyphs), so that a note is never too short
# for its text: the note's inner width and the width of a character of its name (bold
# 12.5px) and of a hotspot's text (11.5px), and the line heights.
TEXT_W = NOTE_W - 18
NAME_CHAR_W = 8.6
HOTSPOT_CHAR_W = 7.2
NAME_LINE_H = 17
HOTSPOT_LINE_H = 15


@dataclass
class Note:
    """One sticky on the board; ``ref`` is the model graph node it shows."""

    index: int
    ref: str
    kind: str
    name: str
    sub: str
    title: str
    x: int = 0
    y: int = 0
    w: int = NOTE_W
    h: int = NOTE_H
    lane_y: int = 0  # the top of its lane: the page positions notes inside their lane
    track_y: int = 0  # the top of its track (row)
    copy: bool = False  # a shared actor drawn again in another lane
    ghost: bool = False  # another context's event, drawn where it is consumed
    external_message: bool = False  # a command or event of an external system
    parts: list[str] = field(default_factory=list)  # the name, cut where it may wrap

    @property
    def left(self) -> int:
        """CSS ``left`` inside the lane (which stands at ``LANE_X`` with a 1px border)."""
        return self.x - LANE_X - 1

    @property
    def top(self) -> int:
        return self.y - self.lane_y - 1


@dataclass
class Track:
    label: str
    y: int = 0
    h: int = 0
    top: int = 0  # inside the lane


@dataclass
class Link:
    """An arrow inside a lane: an SVG path between two notes, in the lane's coordinates."""

    kind: str  # emits, answers, triggers, issues, reads (a lookup: dashed)
    source: str
    target: str
    d: str


@dataclass
class Lane:
    name: str
    description: str
    y: int = 0
    h: int = 0
    tracks: list[Track] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)


@dataclass
class Board:
    """What the template prints: geometry, notes, and the JSON blob for the script."""

    title: str
    description: str
    width: int
    height: int
    lanes: list[Lane]
    notes: list[Note]
    data_json: str
    counts: dict[str, int]
    colours: dict[str, str] = field(default_factory=lambda: dict(COLOURS))
    lane_title_height: int = LANE_TITLE_H
    cast: Lane | None = None  # the model's actors, on top

    @property
    def lane_width(self) -> int:
        return self.width - 2 * LANE_X


class Cells:
    """The tracks of one lane: label -> (band, column) -> stacked notes (column -1: header)."""

    def __init__(self) -> None:
        self.rows: dict[str, dict[tuple[int, int], list[Note]]] = {}
        self.headers: dict[str, Note | None] = {}
        self.links: list[tuple[str, Note, Note]] = []  # (kind, from, to)

    def track(self, label: str, header: Note | None = None) -> dict[tuple[int, int], list[Note]]:
        if label not in self.rows:
            self.rows[label] = defaultdict(list)
            self.headers[label] = header
        return self.rows[label]


class Bands:
    """The bands of one row: a step (a command and its events) takes the first band free
    over its columns, so that a command always stands level with what it emits."""

    def __init__(self) -> None:
        self.ends: list[int] = []  # the last column used, per band

    def take(self, first: int, last: int) -> int:
        for band, end in enumerate(self.ends):
            if end < first:
                self.ends[band] = last
                return band
        self.ends.append(last)
        return len(self.ends) - 1


def note_height(note: Note) -> int:
    """Tall enough for the whole name (or a hotspot's whole text), wrapped as estimated."""
    if note.kind == "hotspot":
        lines = wrapped_lines(note.name.split(), int(TEXT_W // HOTSPOT_CHAR_W), " ")
        return max(SMALL_H, 14 + lines * HOTSPOT_LINE_H)
    lines = wrapped_lines(note.parts, int(TEXT_W // NAME_CHAR_W))
    if note.kind == "actor":
        return max(SMALL_H, 12 + lines * NAME_LINE_H)
    return max(NOTE_H, 32 + lines * NAME_LINE_H)


def _rounded(points: list[tuple[int, int]]) -> str:
    """An SVG path through ``points`` (each leg level or upright), its corners rounded."""
    d = f"M{points[0][0]},{points[0][1]}"
    for (px, py), (x, y), (nx, ny) in zip(points, points[1:], points[2:], strict=False):
        r = min(6, (abs(x - px) + abs(y - py)) // 2, (abs(nx - x) + abs(ny - y)) // 2)

        def toward(ax: int, ay: int, r: int = r, x: int = x, y: int = y) -> tuple[int, int]:
            return (
                x + (r if ax > x else -r if ax < x else 0),
                y + (r if ay > y else -r if ay < y else 0),
            )

        (bx, by), (cx, cy) = toward(px, py), toward(nx, ny)
        d += f" L{bx},{by} Q{x},{y} {cx},{cy}"
    return d + f" L{points[-1][0]},{points[-1][1]}"


def _link_path(kind: str, a: Note, b: Note) -> str:
    """An arrow from ``a``'s right side to ``b``'s left side (under both when it goes back).

    Its legs run level or upright, and only where no note stands: upright in the gaps
    between two columns, level in the margin at the top of the target's row. Between
    neighbouring columns it turns once, in the gap between them. Arrows into policies
    turn a little left of a gap's middle, arrows out of them a little right, so that
    the two do not run on one line.
    """
    x1, y1 = a.left + a.w, a.top + min(a.h // 2, NOTE_H // 2)
    x2, y2 = b.left, b.top + min(b.h // 2, NOTE_H // 2)
    if x2 < x1:
        # Back to an earlier column (a loop cut by the layering): round under the notes.
        x1, x2 = a.left + a.w // 2, b.left + b.w // 2
        y1, y2 = a.top + a.h, b.top + b.h
        low = max(y1, y2) + 24
        return f"M{x1},{y1} C{x1},{low} {x2},{low} {x2},{y2}"
    if y1 == y2:
        return f"M{x1},{y1} H{x2}"
    gap = COL_GAP // 2 + {"triggers": -4, "issues": 4}.get(kind, 0)
    if x2 - x1 <= COL_GAP + gap:
        return _rounded([(x1, y1), (x1 + gap, y1), (x1 + gap, y2), (x2, y2)])
    margin = b.track_y - b.lane_y - 1 + TRACK_PAD // 2
    return _rounded(
        [
            (x1, y1),
            (x1 + gap, y1),
            (x1 + gap, margin),
            (x2 - COL_GAP + gap, margin),
            (x2 - COL_GAP + gap, y2),
            (x2, y2),
        ]
    )


def place_lane(lane: Lane, cells: Cells) -> int:
    """Give every note of a lane its coordinates; return the lane's bottom edge."""
    ty = lane.y + LANE_TITLE_H
    for label, row in cells.rows.items():
        head = cells.headers[label]
        if head is not None:
            row[0, -1].insert(0, head)
        bottom = ty + TRACK_PAD
        for band in sorted({b for b, _ in row}):
            top = bottom + (BAND_GAP if band else 0)
            for (b, col), stack in sorted(row.items()):
                if b != band:
                    continue
                sy = top
                for item in stack:
                    if col < 0:
                        item.x, item.w = PAD + 8, HEADER_W - 16
                    else:
                        item.x = PAD + HEADER_W + col * (NOTE_W + COL_GAP)
                    item.y, item.lane_y, item.track_y = sy, lane.y, ty
                    lane.notes.append(item)
                    sy += item.h + ROW_GAP
                bottom = max(bottom, sy - ROW_GAP)
        height = max(bottom - ty + TRACK_PAD, SMALL_H + 2 * TRACK_PAD)
        lane.tracks.append(
            Track(label="" if head is not None else label, y=ty, h=height, top=ty - lane.y - 1)
        )
        ty += height
    lane.h = ty - lane.y
    lane.notes.sort(key=lambda n: n.index)
    drawn: set[tuple[str, int, int]] = set()
    for kind, src, dst in cells.links:
        if (kind, src.index, dst.index) not in drawn:
            drawn.add((kind, src.index, dst.index))
            lane.links.append(Link(kind, src.ref, dst.ref, _link_path(kind, src, dst)))
    return ty
