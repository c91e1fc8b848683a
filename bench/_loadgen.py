"""The compiled load generators: ``wrk`` for GETs, ``hey`` for HEADs.

wrk 4.1 cannot time HEAD requests: its HTTP parser is never told that a HEAD response has
no body, so it waits for ``Content-Length`` bytes that never come and every request ends
in a timeout (wg/wrk issue 198). HEADs are therefore timed with ``hey`` (Go's HTTP client),
the same way for both registries.

Every wrk run loads a small Lua script that counts responses whose status is not 2xx
(wrk's own "Non-2xx or 3xx responses" line only counts statuses of 400 and above) and
prints the total when wrk finishes; hey prints a status code distribution. Any non-2xx
response makes the run fail: a registry that answers errors quickly must not look fast.
"""

from __future__ import annotations

import re
import subprocess
import tempfile
from dataclasses import dataclass, field

from _servers import BenchError, ensure_tool

_COUNT_NON_2XX = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  end
end

function done(summary, latency, requests)
  local total = 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
  end
  io.write(string.format("bench-non-2xx: %d\\n", total))
end
"""

# Used only when a registry paginates a plain tags list. Pagination state lives in the
# thread's Lua state, so this runs with one connection per thread; each connection follows
# the Link header to the last page, and a complete walk counts as one listing.
_FOLLOW_LINKS = """
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  listings = 0
  first = wrk.path
  nextpath = nil
end

function request()
  return wrk.format(nil, nextpath or first)
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
    nextpath = nil
    return
  end
  local link = headers["Link"] or headers["link"]
  nextpath = link and string.match(link, "<([^>]+)>") or nil
  if nextpath == nil then
    listings = listings + 1
  end
end

function done(summary, latency, requests)
  local total, complete = 0, 0
  for _, thread in ipairs(threads) do
    total = total + thread:get("non2xx")
    complete = complete + thread:get("listings")
  end
  io.write(string.format("bench-non-2xx: %d\\n", total))
  io.write(string.format("bench-listings: %d\\n", complete))
end
"""

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_TIME = r"([\d.]+)(us|ms|s|m|h)"


@dataclass
class LoadResult:
    tool: str
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p99_ms: float
    non_2xx: int
    errors: dict[str, int] = field(default_factory=dict)
    listings: int | None = None
    output: str = ""

    @property
    def listings_per_s(self) -> float:
        """Complete listings per second: requests, unless pages were followed."""
        if self.listings is None:
            return self.rps
        return self.listings / self.seconds if self.seconds else 0.0


def _ms(value: str, unit: str) -> float:
    return float(value) * _UNITS_MS[unit]


def _need(pattern: str, output: str, tool: str) -> re.Match[str]:
    found = re.search(pattern, output, re.MULTILINE)
    if not found:
        raise BenchError(f"cannot read {tool}'s report (no {pattern!r}):\n{output}")
    return found


def parse_wrk(output: str) -> LoadResult:
    """Read wrk's ``--latency`` report and the lines the Lua scripts add."""
    total = _need(rf"^\s*(\d+) requests in {_TIME}", output, "wrk")
    p50 = _need(rf"^\s*50(?:\.0+)?%\s+{_TIME}\s*$", output, "wrk")
    p99 = _need(rf"^\s*99(?:\.0+)?%\s+{_TIME}\s*$", output, "wrk")
    rps = _need(r"^Requests/sec:\s+([\d.]+)", output, "wrk")
    ours = _need(r"^bench-non-2xx: (\d+)", output, "wrk")
    theirs = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    errors: dict[str, int] = {}
    sock = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    if sock:
        counts = map(int, sock.groups())
        errors = dict(zip(("connect", "read", "write", "timeout"), counts, strict=True))
    listings = re.search(r"^bench-listings: (\d+)", output, re.MULTILINE)
    return LoadResult(
        tool="wrk",
        requests=int(total.group(1)),
        seconds=_ms(total.group(2), total.group(3)) / 1000,
        rps=float(rps.group(1)),
        p50_ms=_ms(p50.group(1), p50.group(2)),
        p99_ms=_ms(p99.group(1), p99.group(2)),
        non_2xx=max(int(ours.group(1)), int(theirs.group(1)) if theirs else 0),
        errors={k: v for k, v in errors.items() if v},
        listings=int(listings.group(1)) if listings else None,
        output=output,
    )


def parse_hey(output: str) -> LoadResult:
    """Read hey's summary: totals, latency distribution, status and error distributions."""
    seconds = _need(r"^\s*Total:\s+([\d.]+) secs", output, "hey")
    rps = _need(r"^\s*Requests/sec:\s+([\d.]+)", output, "hey")
    p50 = _need(r"^\s*50% in ([\d.]+) secs", output, "hey")
    p99 = _need(r"^\s*99% in ([\d.]+) secs", output, "hey")
    statuses = {
        int(code): int(count)
        for code, count in re.findall(r"^\s*\[(\d{3})\]\s+(\d+) responses", output, re.MULTILINE)
    }
    errors: dict[str, int] = {}
    if "Error distribution:" in output:
        section = output.split("Error distribution:", 1)[1]
        for count, message in re.findall(r"^\s*\[(\d+)\]\s+(.+)$", section, re.MULTILINE):
            key = message.rsplit(": ", 1)[-1][:60]
            errors[key] = errors.get(key, 0) + int(count)
    return LoadResult(
        tool="hey",
        requests=sum(statuses.values()),
        seconds=float(seconds.group(1)),
        rps=float(rps.group(1)),
        p50_ms=float(p50.group(1)) * 1000,
        p99_ms=float(p99.group(1)) * 1000,
        non_2xx=sum(n for code, n in statuses.items() if not 200 <= code <= 299),
        errors=errors,
        output=output,
    )


def _check(result: LoadResult, what: str) -> LoadResult:
    if result.requests == 0:
        raise BenchError(f"{result.tool} {what}: no request completed:\n{result.output}")
    if result.non_2xx:
        raise BenchError(
            f"{result.tool} {what}: {result.non_2xx} of {result.requests} responses were "
            f"not 2xx:\n{result.output}"
        )
    return result


def _run(argv: list[str], seconds: int, what: str) -> str:
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise BenchError(f"{argv[0]} {what} did not finish within {seconds + 60}s") from exc
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise BenchError(f"{argv[0]} {what} exited {done.returncode}:\n{output}")
    return output


def wrk(
    url: str,
    *,
    threads: int,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    follow_links: bool = False,
    what: str = "",
) -> LoadResult:
    """``wrk --latency`` GETs of ``url``; fails on any non-2xx response or an empty run."""
    binary = ensure_tool("wrk", "wrk")
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-wrk-") as lua:
        lua.write(_FOLLOW_LINKS if follow_links else _COUNT_NON_2XX)
        lua.flush()
        argv = [binary, "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s"]
        argv += ["--timeout", "10s", "--latency", "-s", lua.name]
        for name, value in headers.items():
            argv += ["-H", f"{name}: {value}"]
        argv.append(url)
        output = _run(argv, seconds, what)
    return _check(parse_wrk(output), what)


def hey(
    url: str,
    *,
    method: str,
    connections: int,
    seconds: int,
    headers: dict[str, str],
    what: str = "",
) -> LoadResult:
    """``hey`` with ``connections`` workers for ``seconds``; fails on any non-2xx response."""
    binary = ensure_tool("hey", "hey")
    argv = [binary, "-m", method, "-c", str(connections), "-z", f"{seconds}s", "-t", "10"]
    argv += ["-disable-compression", "-disable-redirects"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    argv.append(url)
    return _check(parse_hey(_run(argv, seconds, what)), what)
