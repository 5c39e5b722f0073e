"""The Jinja environment shared by every target, and the value-by-value comparison used to prove outputs.

Templates are dumb: they receive values already mapped to the client's vocabulary and escape them with the
named filters registered by each target (`xml`, `plist_*`, `prefs_string`, ...). The environment is
sandboxed when admins point `--templates` at their own copies.
"""

from __future__ import annotations

import contextlib
import difflib
import math
import os
import re
import resource
import signal
import stat
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta
from jinja2.exceptions import SecurityError
from jinja2.loaders import split_template_path
from jinja2.sandbox import ImmutableSandboxedEnvironment

from generator.errors import BuildError, VerificationError


@cache
def packaged_templates() -> Path:
    """templates/ inside an installed wheel (generator/templates) or beside the package in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "templates", here.parent / "templates"):
        if candidate.is_dir():
            return candidate
    raise BuildError("the packaged templates are missing: reinstall mailprofile")


MAX_TEMPLATE_BYTES = 1 << 20  # a template file (ours are a few KiB)
MAX_OUTPUT_CHARS = 16 << 20  # one rendered file (a profile is a few KiB)
MAX_RENDER_MEMORY = 256 << 20  # what one render of an admin's template may allocate beyond the process
MAX_RENDER_SECONDS = 2  # CPU seconds for one render of an admin's template
MAX_SEQUENCE = 1 << 20  # longest string or list `*` may build in an admin's template


class ConfinedLoader(jinja2.BaseLoader):
    """An admin's template folder: names resolve inside it, and a link that leads out of it (to /etc/passwd,
    say) is refused, as is anything but a regular file of reasonable size."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def get_source(self, environment: jinja2.Environment, template: str) -> tuple[str, str, Callable[[], bool]]:
        path = self.root.joinpath(*split_template_path(template))  # refuses '..'
        if not os.path.lexists(path):
            raise jinja2.TemplateNotFound(template)
        real = path.resolve()
        if self.root not in real.parents:
            raise BuildError(f"--templates {self.root}: {template} is a link to {real}, outside the templates "
                             "folder; copy the file into the folder instead")
        info = os.stat(real)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_TEMPLATE_BYTES:
            raise BuildError(f"--templates {self.root}: {template} is not a regular file of at most "
                             f"{MAX_TEMPLATE_BYTES >> 10} KiB")
        try:
            source = real.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise BuildError(f"--templates {self.root}: {template} is not UTF-8 ({exc.reason})") from None
        mtime = info.st_mtime
        return source, str(path), lambda: os.path.exists(real) and os.path.getmtime(real) == mtime


def check_template_folder(root: Path) -> None:
    """Every file in an admin's --templates folder must be a template a build renders, or one such a template
    includes, imports or extends: a misspelt name (apple/mobileconfig.j2, Apple/..., guide/guide.htm.j2)
    would otherwise be ignored, and the build silently use the packaged template in its place. Hidden files
    and folders (.git, .DS_Store) are skipped. Raises BuildError naming each stray file, with the nearest
    packaged name. A template whose includes are computed (`{% include name %}`) could use any file: then
    nothing is refused."""
    root = root.resolve()
    packaged = packaged_templates()
    # web/ is the page of `serve`, which takes no --templates: a copy here would be ignored too.
    ours = {name for p in packaged.rglob("*.j2") if not (name := p.relative_to(packaged).as_posix()).startswith("web/")}
    theirs = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        theirs |= {(Path(folder) / f).relative_to(root).as_posix() for f in files if not f.startswith(".")}
    parser = jinja2.Environment(extensions=["jinja2.ext.i18n"])
    loader = ConfinedLoader(root)  # links out of the folder, devices, huge or non-UTF-8 files: refused here
    used, todo = set(), sorted(ours)
    while todo:
        name = todo.pop()
        if name in used:
            continue
        used.add(name)
        try:
            source = (loader.get_source(parser, name)[0] if name in theirs
                      else (packaged / name).read_text(encoding="utf-8"))
            referenced = list(jinja2.meta.find_referenced_templates(parser.parse(source)))
        except (OSError, jinja2.TemplateError):
            continue  # not there, or a syntax error: reported, with its line, when the build loads it
        if None in referenced:
            return
        todo += [r for r in referenced if r is not None]
    stray = sorted(theirs - used)
    if stray:
        lines = []
        for name in stray:
            near = difflib.get_close_matches(name, sorted(ours), n=1, cutoff=0.6)
            hint = (f"did you mean {near[0]}? rename it" if near
                    else "name it as the packaged template it replaces (templates/ lists them)")
            lines.append(f"{name} is not a template the build uses — {hint}, or move it out of the folder")
        raise BuildError(f"--templates {root}: " + f"\nerror: --templates {root}: ".join(lines))


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """Jinja's sandbox, plus bounds on the operators that allocate without limit ('x' * 10**10, 9 ** 10**9,
    '%999999999s' % x). Other routes to memory or time (str.ljust(10**10), nested loops) are bounded when the
    template runs: see `render_template`."""

    intercepted_binops = frozenset(["*", "**", "%"])

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            for seq, n in ((left, right), (right, left)):
                if isinstance(seq, str | list | tuple | bytes) and isinstance(n, int) and len(seq) * n > MAX_SEQUENCE:
                    raise SecurityError(f"'*' would build {len(seq) * n} items (limit {MAX_SEQUENCE})")
        elif operator == "**" and isinstance(left, int | float) and isinstance(right, int | float):
            if abs(right) > 64 and abs(left) > 1:
                raise SecurityError(f"'**' with exponent {right} (limit 64)")
        elif operator == "%" and isinstance(left, str) and re.search(r"%[-#0 +]*(\*|\d{5,}|\.\d{5,}|\d*\.\*)", left):
            raise SecurityError("'%' format with a width or precision of 10000 or more")
        return super().call_binop(context, operator, left, right)


def make_environment(override: Path | None = None,
                     filters: Mapping[str, Callable[..., Any]] | None = None) -> jinja2.Environment:
    """Files in `override` win over the packaged ones, file by file.

    With an override folder the environment is a bounded sandbox: those templates come from outside the
    package. The packaged templates are our own code and render without the sandbox's per-attribute checks
    (measured: about a sixth of the render time)."""
    loaders: list[jinja2.BaseLoader] = []
    if override is not None:
        if not override.is_dir():
            raise BuildError(f"--templates {override}: not a folder")
        loaders.append(ConfinedLoader(override))
    loaders.append(jinja2.FileSystemLoader(str(packaged_templates())))
    kind = LimitedSandbox if override is not None else jinja2.Environment
    env = kind(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=False,  # each format escapes with its own named filter
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(filters or {})
    return env


def render_template(env: jinja2.Environment, name: str, context: Mapping[str, Any]) -> str:
    try:
        template = env.get_template(name)
        if not isinstance(env, LimitedSandbox):
            return template.render(context)
        with _bounded(name):
            return _render_bounded(template, context, name)
    except jinja2.TemplateNotFound as exc:
        if exc.name == name:
            raise BuildError(f"template {name} not found") from None
        # An include, import or extends inside the template: name the template that asks, and where.
        raise BuildError(f"template {_where(env, exc, name)}: {exc.name!r} is neither in --templates nor packaged "
                         "(names are relative to the folder, with '/' and without '..') — fix the name in this "
                         "template") from None
    except jinja2.TemplateError as exc:
        line = getattr(exc, "lineno", None)  # a syntax error knows its template and line
        where = f"{getattr(exc, 'name', None) or name}:{line}" if line else _where(env, exc, name)
        fix = " — fix this template in the --templates folder" if isinstance(env, LimitedSandbox) else ""
        raise BuildError(f"template {where}: {str(exc).rstrip('.')}{fix}") from None
    except MemoryError as exc:
        raise BuildError(f"template {_where(env, exc, name)}: rendering needed more than "
                         f"{MAX_RENDER_MEMORY >> 20} MiB; check the template for loops or repetitions that grow "
                         "without bound") from None
    except RecursionError:
        raise BuildError(f"template {name}: recursion too deep; check recursive macros or includes") from None
    except BuildError:
        raise
    except Exception as exc:  # an admin's template failing at run time (1 // 0, 1 + 'a', a too-big range)
        if not isinstance(env, LimitedSandbox):
            raise  # a packaged template: our bug, reported as one
        raise BuildError(f"template {_where(env, exc, name)}: {type(exc).__name__}: {exc} — fix this template in "
                         "the --templates folder") from None


def _where(env: jinja2.Environment, exc: BaseException, name: str) -> str:
    """The template and line a runtime error happened on ('name:line'): Jinja rewrites tracebacks so that a
    template's frames carry its file and line numbers. The innermost such frame is the template that failed,
    an included or imported one rather than `name` when it is there; its file is named as a template."""
    roots = [Path(root) for loader in getattr(env.loader, "loaders", ())
             for root in ([loader.root] if isinstance(loader, ConfinedLoader)
                          else getattr(loader, "searchpath", []))]
    where = f"{name}:?"
    tb = exc.__traceback__
    while tb is not None:
        file = tb.tb_frame.f_code.co_filename
        if file.endswith(".j2"):
            template = next((Path(file).relative_to(root).as_posix() for root in roots
                             if Path(file).is_relative_to(root)), name)
            where = f"{template}:{tb.tb_lineno}"
        tb = tb.tb_next
    return where


def _render_bounded(template: jinja2.Template, context: Mapping[str, Any], name: str) -> str:
    parts: list[str] = []
    size = 0
    for chunk in template.generate(context):
        size += len(chunk)
        if size > MAX_OUTPUT_CHARS:
            raise BuildError(f"template {name}: the output grows past {MAX_OUTPUT_CHARS >> 20} M characters")
        parts.append(chunk)
    text = "".join(parts)
    # Spec values never hold a lone surrogate (the model refuses them); a template can make one ('%c' % 55296),
    # and no file of ours can carry it: the encoding step would fail as an internal error.
    surrogate = _SURROGATE.search(text)
    if surrogate is not None:
        line = text.count("\n", 0, surrogate.start()) + 1
        raise BuildError(f"template {name}: output line {line} holds U+{ord(surrogate.group()):04X}, a lone "
                         "surrogate that no UTF-8 or UTF-16 file can carry — fix this template in the --templates "
                         "folder")
    return text


_SURROGATE = re.compile("[\ud800-\udfff]")


class _RenderTimeout(Exception):
    pass


def _vm_size() -> int:
    try:
        with open("/proc/self/statm", encoding="ascii") as handle:
            return int(handle.read().split()[0]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


@contextlib.contextmanager
def _bounded(name: str) -> Iterator[None]:
    """Address-space and CPU-time limits around one render of an admin's template: a runaway allocation
    becomes a MemoryError, a runaway loop a timeout, each a BuildError naming the template. Only where
    limits can be set (Linux, the main thread); the operator checks of LimitedSandbox apply everywhere."""
    vm = _vm_size()
    if not vm or threading.current_thread() is not threading.main_thread():
        yield
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = vm + MAX_RENDER_MEMORY
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)

    def timeout(_signum: int, _frame: Any) -> None:
        raise _RenderTimeout

    previous = signal.signal(signal.SIGVTALRM, timeout)
    signal.setitimer(signal.ITIMER_VIRTUAL, MAX_RENDER_SECONDS)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    try:
        yield
    except _RenderTimeout:
        raise BuildError(f"template {name}: rendering took more than {MAX_RENDER_SECONDS} s of CPU time; check "
                         "the template for loops that never end") from None
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        signal.setitimer(signal.ITIMER_VIRTUAL, 0)
        signal.signal(signal.SIGVTALRM, previous)


def xml_escape(value: object) -> str:
    """Escape for XML text and attribute values (both quote kinds, so either attribute style is safe)."""
    return (str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;").replace("'", "&apos;"))


def same(expected: Any, actual: Any) -> bool:
    """Equal, types included, at every depth (True is not 1, 995 is not '995', 1.0 is not 1).

    Scalars are compared inline rather than by a call per value: this runs on every file of every build."""
    kind = type(expected)
    if kind is not type(actual):
        return False
    if kind is dict:
        if expected.keys() != actual.keys():
            return False
        pairs: Iterable[tuple[Any, Any]] = ((v, actual[k]) for k, v in expected.items())
    elif kind is list or kind is tuple:
        if len(expected) != len(actual):
            return False
        pairs = zip(expected, actual, strict=True)
    else:
        return _same_scalar(expected, actual)
    for e, a in pairs:
        sub = type(e)
        if sub is not type(a):
            return False
        if sub is dict or sub is list or sub is tuple:
            if not same(e, a):
                return False
        elif e != a and not _same_scalar(e, a):
            return False
    return True


def _same_scalar(expected: Any, actual: Any) -> bool:
    return bool(expected == actual) or (type(expected) is float and math.isnan(expected) and math.isnan(actual))


def prove(path: str, expected: Any, actual: Any) -> None:
    """The last step of render-then-prove for every target: raise VerificationError on any difference."""
    mismatches = differences(expected, actual)
    if mismatches:
        raise VerificationError(path, mismatches)


def differences(expected: Any, actual: Any, path: str = "") -> list[str]:
    """Every place where `actual` differs from `expected`, types included (True is not 1, 995 is not '995')."""
    if not path and same(expected, actual):  # the common case, without building a path per value
        return []
    where = path or "(root)"
    if type(expected) is not type(actual):
        return [f"{where}: expected {type(expected).__name__} {expected!r}, found {type(actual).__name__} "
                f"{actual!r}"]
    if isinstance(expected, Mapping):
        out = []
        for key in sorted(set(expected) | set(actual), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in actual:
                out.append(f"{sub}: missing (expected {expected[key]!r})")
            elif key not in expected:
                out.append(f"{sub}: unexpected value {actual[key]!r}")
            else:
                out.extend(differences(expected[key], actual[key], sub))
        return out
    if isinstance(expected, list | tuple):
        if len(expected) != len(actual):
            return [f"{where}: expected {len(expected)} items, found {len(actual)}"]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out.extend(differences(e, a, f"{path}[{i}]"))
        return out
    if isinstance(expected, float) and math.isnan(expected) and math.isnan(actual):
        return []
    if expected != actual:
        return [f"{where}: expected {expected!r}, found {actual!r}"]
    return []
