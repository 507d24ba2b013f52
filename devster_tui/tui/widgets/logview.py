"""The log pane: a virtualised Line API view over one task's lines in the output store.

Only the lines on screen are read from the output store, decoded and rendered; rendered
strips are cached by absolute line number (bounded LRU), so scrolling and repaints of a
following pane cost a handful of dictionary look-ups.  The pane never receives a message
per output line: the cockpit's pump calls :meth:`LogView.poll` ~25 times a second and the
pane asks the output store where its end is now.
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict
from dataclasses import dataclass

from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from devster_tui.tui.ansi import decode, render_line
from devster_tui.tui.bridge import VIEWS, LineLike, OutputView
from devster_tui.tui.themes import resolve_color

CACHE_LINES = 4096
"""Rendered strips kept per pane."""
READ_AHEAD = 64
"""Extra lines read around a cache miss."""
SCAN_CHUNK = 2000
"""Lines read per call while scanning for matches or restart markers."""


@dataclass(frozen=True, slots=True)
class _Entry:
    line: LineLike
    text: Text


class LogView(ScrollView, can_focus=True):
    """One task's output: stdout, stderr or both, with follow, search, filter and clear."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        border: round $panel-lighten-2;
        border-title-color: $foreground;
        border-subtitle-color: $accent;
        padding: 0 0;
    }
    LogView:focus {
        border: round $primary;
    }
    """

    def __init__(self, output: OutputView, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._output = output
        self.task_name: str | None = None
        """The task shown (None: nothing selected)."""
        self.view = "both"
        """``both``, ``stdout`` or ``stderr``."""
        self.follow = True
        """Stick to the newest line; paused when the user scrolls up."""
        self.unseen = 0
        """Lines that arrived while follow was paused."""
        self.pattern: re.Pattern[str] | None = None
        """The active search, if any."""
        self.filtering = False
        """Show only lines matching :attr:`pattern`."""
        self.matches: list[int] = []
        """Absolute indexes of matching lines in memory, ascending."""
        self.current_match: int | None = None
        """The match that next/previous moved to."""
        self.status_text = ""
        """Extra text for the title (the task's status), set by the cockpit."""
        self._first = 0
        self._end = 0
        self._cleared: dict[tuple[str, str], int] = {}
        self._scanned = 0
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._strips: OrderedDict[int, Strip] = OrderedDict()
        self._max_width = 0
        self._styles_for: tuple[str, int] | None = None
        self._stderr_style = Style()
        self._marker_style = Style()
        self._match_style = Style()
        self._current_style = Style()
        self._programmatic = False
        self.renders = 0
        """Lines rendered (strip cache misses), for tests and diagnostics."""

    # ------------------------------------------------------------------ what is shown

    def show(self, task: str | None, view: str | None = None) -> None:
        """Show ``task`` (and optionally switch the view); starts following."""
        if view is not None:
            if view not in VIEWS:
                raise ValueError(f"unknown view {view!r}")
            self.view = view
        self.task_name = task
        self.follow = True
        self.unseen = 0
        self.current_match = None
        self._reset()
        self.poll()
        self._scroll_end()
        self._update_titles()

    def cycle_view(self) -> str:
        """Switch both -> stdout -> stderr -> both; returns the new view."""
        self.show(self.task_name, VIEWS[(VIEWS.index(self.view) + 1) % len(VIEWS)])
        return self.view

    def clear(self) -> None:
        """Hide everything printed so far (the output store keeps it)."""
        if self.task_name is None:
            return
        for view in VIEWS:
            self._cleared[(self.task_name, view)] = self._output.end(self.task_name, view)
        self.follow = True
        self.unseen = 0
        self.current_match = None
        self._reset()
        self.poll()
        self._update_titles()

    def _reset(self) -> None:
        self._entries.clear()
        self._strips.clear()
        self.matches = []
        self._first = self._end = self._scanned = self._base()
        self._max_width = 0
        self.virtual_size = Size(0, 0)
        self.scroll_to(0, 0, animate=False, immediate=True)

    def _base(self) -> int:
        if self.task_name is None:
            return 0
        first = self._output.first(self.task_name, self.view)
        return max(first, self._cleared.get((self.task_name, self.view), 0))

    @property
    def line_count(self) -> int:
        """Rows the pane has (lines in memory, or matching lines when filtering)."""
        if self.filtering and self.pattern is not None:
            return len(self.matches)
        return self._end - self._first

    def row_to_index(self, row: int) -> int | None:
        """Absolute line index shown on virtual row ``row``."""
        if row < 0:
            return None
        if self.filtering and self.pattern is not None:
            return self.matches[row] if row < len(self.matches) else None
        index = self._first + row
        return index if index < self._end else None

    def index_to_row(self, index: int) -> int | None:
        """Virtual row showing absolute line ``index`` (None when hidden)."""
        if self.filtering and self.pattern is not None:
            i = bisect.bisect_left(self.matches, index)
            return i if i < len(self.matches) and self.matches[i] == index else None
        if self._first <= index < self._end:
            return index - self._first
        return None

    # ------------------------------------------------------------------ the pump

    def poll(self) -> bool:
        """Catch up with the output store; returns whether anything changed."""
        if self.task_name is None:
            return False
        end = self._output.end(self.task_name, self.view)
        base = self._base()
        if end == self._end and base == self._first:
            return False
        dropped = max(0, base - self._first)
        new_lines = max(0, end - self._end)
        old_rows = self.line_count
        self._first = base
        self._end = end
        for index in [i for i in self._strips if i < base]:
            del self._strips[index]
        for index in [i for i in self._entries if i < base]:
            del self._entries[index]
        if self.pattern is not None:
            self.matches = [m for m in self.matches if m >= base]
            self._scan(max(self._scanned, base), end)
        rows = self.line_count
        self.virtual_size = Size(self._max_width, rows)
        if self.follow:
            self._scroll_end()
        else:
            if self.filtering and self.pattern is not None:
                self.unseen += max(0, rows - old_rows)
            else:
                self.unseen += new_lines
                if dropped:
                    self._scroll_programmatic(max(0, self.scroll_offset.y - dropped))
        self._update_titles()
        self.refresh()
        return True

    def _scroll_end(self) -> None:
        self._scroll_programmatic(max(0, self.line_count - self.scrollable_content_region.height))

    def _scroll_programmatic(self, y: int) -> None:
        self._programmatic = True
        try:
            self.scroll_to(y=y, animate=False, force=True)
        finally:
            self._programmatic = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Pause follow when the user scrolls up; resume it at the bottom."""
        super().watch_scroll_y(old_value, new_value)
        if self._programmatic:
            return
        at_bottom = round(new_value) >= self.line_count - self.scrollable_content_region.height
        if at_bottom and not self.follow:
            self.follow = True
            self.unseen = 0
            self._update_titles()
        elif not at_bottom and self.follow and new_value < old_value:
            self.follow = False
            self._update_titles()

    def follow_end(self) -> None:
        """Jump to the newest line and follow again."""
        self.follow = True
        self.unseen = 0
        self._scroll_end()
        self._update_titles()

    def _update_titles(self) -> None:
        if self.task_name is None:
            self.border_title = "no task selected"
            self.border_subtitle = ""
            return
        title = f"{self.task_name} · {self.view}"
        if self.status_text:
            title += f" · {self.status_text}"
        self.border_title = title
        parts: list[str] = []
        if self.pattern is not None:
            mode = "filter" if self.filtering else "search"
            parts.append(f"{mode} /{self.pattern.pattern}/ {len(self.matches)} matches")
        if self.follow:
            parts.append("following")
        else:
            parts.append(f"paused · {self.unseen} new lines (G follows)")
        self.border_subtitle = " · ".join(parts)

    def set_status_text(self, text: str) -> None:
        """Set the status shown in the title (repaints only when it differs)."""
        if text != self.status_text:
            self.status_text = text
            self._update_titles()

    # ------------------------------------------------------------------ search

    def search(self, pattern: str | None) -> int:
        """Highlight lines matching the regular expression ``pattern`` (None clears).

        Returns:
            How many lines in memory match.

        Raises:
            re.error: when ``pattern`` is not a valid regular expression.
        """
        if not pattern:
            self.pattern = None
            self.filtering = False
            self.matches = []
            self.current_match = None
        else:
            self.pattern = re.compile(pattern)
            self.matches = []
            self.current_match = None
            self._scan(self._first, self._end)
        self._strips.clear()
        self._after_mode_change()
        return len(self.matches)

    def _scan(self, start: int, end: int) -> None:
        """Find matching lines in ``start .. end`` (read in chunks)."""
        pattern = self.pattern
        if pattern is None or self.task_name is None:
            self._scanned = end
            return
        position = start
        while position < end:
            lines = self._output.read(
                self.task_name, self.view, position, min(SCAN_CHUNK, end - position)
            )
            if not lines:
                position += SCAN_CHUNK
                continue
            for line in lines:
                if line.stream != "marker" and pattern.search(self._entry(line).text.plain):
                    self.matches.append(line.n)
            position = lines[-1].n + 1
        self._scanned = max(self._scanned, end)

    def toggle_filter(self) -> bool:
        """Show only matching lines (needs an active search); returns the new setting."""
        if self.pattern is None:
            self.filtering = False
        else:
            self.filtering = not self.filtering
        self._after_mode_change()
        return self.filtering

    def _after_mode_change(self) -> None:
        self.virtual_size = Size(self._max_width, self.line_count)
        if self.current_match is not None:
            self._reveal(self.current_match)
        elif self.follow:
            self._scroll_end()
        self._update_titles()
        self.refresh()

    def next_match(self, backwards: bool = False) -> int | None:
        """Move to the next (or previous) matching line; returns its absolute index."""
        if not self.matches:
            return None
        if self.current_match is not None:
            anchor = self.current_match
        else:
            top = self.row_to_index(self.scroll_offset.y)
            anchor = top if top is not None else self._end
            anchor = anchor - 1 if not backwards else anchor + 1
        if backwards:
            i = bisect.bisect_left(self.matches, anchor) - 1
            target = self.matches[i] if i >= 0 else self.matches[-1]
        else:
            i = bisect.bisect_right(self.matches, anchor)
            target = self.matches[i] if i < len(self.matches) else self.matches[0]
        previous = self.current_match
        self.current_match = target
        for index in (previous, target):
            if index is not None:
                self._strips.pop(index, None)
        self._reveal(target)
        self.refresh()
        return target

    def _reveal(self, index: int) -> None:
        row = self.index_to_row(index)
        if row is None:
            return
        height = self.scrollable_content_region.height
        top = self.scroll_offset.y
        if not (top <= row < top + height) or self.follow:
            self.follow = False
            self._scroll_programmatic(max(0, row - height // 2))
        self._update_titles()

    def jump_last_restart(self) -> int | None:
        """Scroll to the newest restart marker line; returns its index (None if none)."""
        if self.task_name is None:
            return None
        position = self._end
        while position > self._first:
            start = max(self._first, position - SCAN_CHUNK)
            lines = self._output.read(self.task_name, self.view, start, position - start)
            for line in reversed(lines):
                if line.stream == "marker":
                    if self.filtering:
                        self.filtering = False
                        self._after_mode_change()
                    self.follow = False
                    row = self.index_to_row(line.n)
                    if row is not None:
                        self._scroll_programmatic(row)
                    self._update_titles()
                    return line.n
            if start == self._first or not lines:
                break
            position = start
        return None

    # ------------------------------------------------------------------ rendering

    def _ensure_styles(self) -> None:
        key = (self.app.theme, self.size.width)
        if self._styles_for == key:
            return
        variables = self.app.theme_variables
        self._stderr_style = Style(color=resolve_color(variables, "status-failed", "#ff5f5f"))
        if "status-failed" not in variables:
            self._stderr_style = Style(color=resolve_color(variables, "error"))
        self._marker_style = Style(color=resolve_color(variables, "accent"), bold=True)
        self._match_style = Style(
            bgcolor=resolve_color(variables, "warning"),
            color=resolve_color(variables, "background"),
        )
        self._current_style = Style(
            bgcolor=resolve_color(variables, "accent"),
            color=resolve_color(variables, "background"),
            bold=True,
        )
        self._strips.clear()
        self._styles_for = key

    def _entry(self, line: LineLike) -> _Entry:
        entry = self._entries.get(line.n)
        if entry is None:
            if line.stream == "marker":
                text = Text(decode(line.data), end="", no_wrap=True)
            else:
                text = render_line(line.data)
            entry = _Entry(line, text)
            self._entries[line.n] = entry
            while len(self._entries) > CACHE_LINES:
                self._entries.popitem(last=False)
        return entry

    def _load(self, index: int) -> _Entry | None:
        entry = self._entries.get(index)
        if entry is not None:
            self._entries.move_to_end(index)
            return entry
        if self.task_name is None:
            return None
        start = max(self._first, index - READ_AHEAD // 4)
        lines = self._output.read(self.task_name, self.view, start, READ_AHEAD)
        found: _Entry | None = None
        for line in lines:
            made = self._entry(line)
            if line.n == index:
                found = made
        return found

    def _strip(self, index: int) -> Strip | None:
        strip = self._strips.get(index)
        if strip is not None:
            self._strips.move_to_end(index)
            return strip
        entry = self._load(index)
        if entry is None:
            return None
        self.renders += 1
        line = entry.line
        if line.stream == "marker":
            label = f"── {entry.text.plain.strip('─ ')} "
            width = max(self.scrollable_content_region.width, len(label) + 3)
            text = Text(label.ljust(width, "─"), self._marker_style, end="", no_wrap=True)
        else:
            gutter = Text("▌" if line.stream == "stderr" else " ", self._stderr_style, end="")
            body = entry.text.copy()
            if self.pattern is not None:
                style = self._current_style if index == self.current_match else self._match_style
                for match in self.pattern.finditer(body.plain):
                    if match.end() > match.start():
                        body.stylize(style, match.start(), match.end())
            text = Text(end="", no_wrap=True)
            text.append_text(gutter)
            text.append_text(body)
        strip = Strip(list(text.render(self.app.console)), text.cell_len)
        if line.stream != "marker":
            self._max_width = max(self._max_width, strip.cell_length)
        self._strips[index] = strip
        while len(self._strips) > CACHE_LINES:
            self._strips.popitem(last=False)
        return strip

    def render_line(self, y: int) -> Strip:
        """Render visible row ``y`` (only visible rows are ever decoded)."""
        self._ensure_styles()
        width = self.scrollable_content_region.width
        base = self.rich_style
        scroll_x, scroll_y = self.scroll_offset
        index = self.row_to_index(scroll_y + y)
        if index is None:
            return Strip.blank(width, base)
        strip = self._strip(index)
        if strip is None:
            return Strip.blank(width, base)
        return strip.apply_style(base).crop_extend(scroll_x, scroll_x + width, base)

    def on_resize(self, event: events.Resize) -> None:
        """Re-fit the virtual size and stay at the bottom when following."""
        self._strips.clear()
        self.virtual_size = Size(self._max_width, self.line_count)
        if self.follow:
            self._scroll_end()

    def on_idle(self) -> None:
        """Grow the horizontal scroll range to the widest line rendered so far."""
        if self._max_width > self.virtual_size.width:
            self.virtual_size = Size(self._max_width, self.line_count)

    def visible_text(self) -> list[str]:
        """The plain text of the rows on screen (for tests and the detail view)."""
        height = self.scrollable_content_region.height
        result: list[str] = []
        for row in range(self.scroll_offset.y, self.scroll_offset.y + height):
            index = self.row_to_index(row)
            if index is None:
                break
            entry = self._load(index)
            if entry is not None:
                result.append(entry.text.plain)
        return result
