"""The `daas` commands that the README, the model cards and the CLI's own help show are commands that parse:
every subcommand and option exists, and every `--set section.key=value` names a key of the config it is set on
(a model card's training command that no longer runs is a reproduction recipe that silently rotted)."""
import re
import shlex
from pathlib import Path

import pytest
import typer

from daas.cli import app

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *(str(p.relative_to(ROOT)) for p in sorted(ROOT.glob("*/weights/*.md")))]
CLI = typer.main.get_command(app)
PLACEHOLDER = "PLACEHOLDER"


def _commands_in(text: str) -> list[str]:
    """`daas ...` in inline code spans and at the start of lines of code blocks (backslash continuations
    joined, trailing `# comments` dropped)."""
    found = [m.group(1) for m in re.finditer(r"`(daas [^`]+)`", text)]
    in_block = False
    lines = text.replace("\\\n", " ").splitlines()
    for line in lines:
        if line.lstrip().startswith("```"):
            in_block = not in_block
        elif in_block and line.lstrip().startswith("daas "):
            found.append(line.split(" #")[0].strip())
    return found


def _argv(command: str) -> list[str]:
    """One concrete argv of a documented command: optional [parts] kept, the first of `a|b` alternatives,
    placeholders (`...`, `<...>`) kept as PLACEHOLDER where they stand for a value, else dropped."""
    command = re.sub(r"<[^>]*>", PLACEHOLDER, command)
    # the brackets of an optional part stand at a word's edges; those inside a value ("key=[0.8, 1.0]") stay
    command = re.sub(r"\](?!\S)", " ", re.sub(r"(?<!\S)\[", " ", command))
    argv = []
    for tok in shlex.split(command)[1:]:
        if tok == "..." and argv and argv[-1].startswith("-"):  # an option's value left out
            tok = PLACEHOLDER
        elif tok in ("|", "...") or tok.endswith("..."):  # a repetition or an alternative
            continue
        argv.append(tok.split("|")[0] if "|" in tok and not tok.startswith("-") else tok)
    return argv


def _documented() -> list[tuple[str, str]]:
    cases = [(doc, c) for doc in DOCS for c in _commands_in((ROOT / doc).read_text())]

    def walk(cmd, path):  # the examples in the CLI's own help texts, one a line (or ended by ";")
        text = re.sub(r"\n\s*(?=--)", " ", cmd.help or "")  # a line that starts with an option continues one
        for line in text.splitlines():
            for m in re.finditer(r"(daas [a-z][^;]*)", line):
                cases.append((f"help of {path}", m.group(1).strip()))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(CLI, "daas")
    return cases


def _parse(argv: list[str]):
    """Parse without running: resolve each group's subcommand, then check every option token against the
    command's options. Resilient parsing, so that missing required values (`daas scan` named in a sentence) and
    eager options (`--help`) are not errors here."""
    cmd, ctx, name = CLI, None, "daas"
    while True:
        ctx = cmd.make_context(name, list(argv), parent=ctx, resilient_parsing=True)
        rest = [*(getattr(ctx, "_protected_args", None) or getattr(ctx, "protected_args", None) or []), *ctx.args]
        if not hasattr(cmd, "resolve_command") or not rest:
            break
        name, sub, argv = cmd.resolve_command(ctx, rest)
        assert sub is not None, f"no such command: {name}"
        cmd = sub
    known = {o for p in cmd.params for o in (*p.opts, *p.secondary_opts)} | set(ctx.help_option_names)
    unknown = [t.split("=")[0] for t in argv if t.startswith("-") and not re.fullmatch(r"-[\d.]+", t)
               and t.split("=")[0] not in known]
    assert not unknown, f"no such option of {cmd.name}: {', '.join(unknown)}"
    return cmd, ctx, rest


CASES = _documented()


def test_the_docs_show_commands():
    # the parser of the docs finds what it should, so an empty list cannot pass the test below
    assert len(CASES) > 20
    assert sum(c.startswith("daas train dit") for _, c in CASES) >= 5
    assert len(PY_CASES) >= 4


@pytest.mark.parametrize("doc,command", CASES, ids=[f"{d}:{c[:60]}" for d, c in CASES])
def test_documented_command_parses(doc, command):
    from generator.config import DiTTrainConfig, VAETrainConfig, load_config

    cmd, ctx, rest = _parse(_argv(command))
    assert not rest or cmd.params and any(p.nargs == -1 for p in cmd.params), \
        f"{doc}: {command!r} leaves {rest} unparsed"
    if cmd.name == "train" and ctx.params.get("config") not in (None, Path(PLACEHOLDER)) \
            and ctx.params.get("stage") in ("vae", "dit"):
        config = ROOT / ctx.params["config"]
        assert config.exists(), f"{doc}: {command!r} names a missing config"
        cls = VAETrainConfig if ctx.params["stage"] == "vae" else DiTTrainConfig
        load_config(config, cls, ctx.params.get("set_") or ())  # raises on an unknown key


@pytest.mark.parametrize("command,why", [
    ("daas train dit --config configs/dit_vae16.yaml --threads 2", "no such option of train: --threads"),
    ("daas tran dit --config configs/dit_vae16.yaml", "no such command"),
    ("daas train dit --config configs/dit_vae16.yaml --set train.thread=2", "unknown TrainConfig keys: thread"),
    ("daas train dit --config configs/nothing.yaml", "names a missing config"),
    # a bracketed value is a value, not an optional part: it reaches the config whole, and is checked there
    ('daas train dit --config configs/dit_vae16.yaml --set "train.time_range=[0.9, 0.5]"', "0 <= lo < hi <= 1"),
])
def test_a_rotten_command_is_caught(command, why):
    with pytest.raises((AssertionError, ValueError), match=why):
        test_documented_command_parses("here", command)


def _python_modules_documented() -> list[tuple[str, str]]:
    """`python -m package.module --options` in the docs, inline or at the start of a code block's line."""
    found = []
    for doc in DOCS:
        for m in re.finditer(r"(?:`|^\s*)(python -m [a-z_.]+[^`\n]*)", (ROOT / doc).read_text(), re.M):
            found.append((doc, m.group(1).strip()))
    return found


PY_CASES = _python_modules_documented()


@pytest.mark.parametrize("module", sorted({c.split()[2] for _, c in PY_CASES}))
def test_documented_python_module_takes_its_options(module):
    import subprocess
    import sys

    usage = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True, text=True, cwd=ROOT,
                           timeout=120)
    assert usage.returncode == 0, usage.stderr[-500:]
    for doc, command in PY_CASES:
        if command.split()[2] == module:
            options = {t.split("=")[0] for t in shlex.split(command)[3:] if t.startswith("--")}
            missing = [o for o in options if not re.search(rf"{re.escape(o)}\b", usage.stdout)]
            assert not missing, f"{doc}: {command!r}: {module} --help has no {', '.join(missing)}"
