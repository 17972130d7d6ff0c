"""WordNet for METEOR without a download: built from Debian's WordNet 3.0 files.

nltk's ``meteor_score`` matches synonyms through ``nltk.corpus.wordnet``, which nltk would
normally fetch with ``nltk.download("wordnet")``. ehrqa never downloads at run time: the
corpus is assembled from the Debian packages ``wordnet-base`` (data, index and exception
files) and ``wordnet-sense-index`` (``index.sense``), plus the ``lexnames`` file, which
Debian does not ship and which is written here from :data:`LEXNAMES`.

Files nltk's ``WordNetCorpusReader`` (nltk 3.10) opens while it is constructed: ``lexnames``,
``index.{adj,adv,noun,verb}``, ``data.{adj,adv,noun,verb}``, ``{adj,adv,noun,verb}.exc``
and ``index.sense`` (its ``map_wn`` reads the sense index of the ``corpora/wordnet`` found
on ``nltk.data.path``), so both Debian packages are required. ``cntlist.rev`` (lemma
counts, from ``wordnet-base``) is read on demand and copied too.

nltk also refuses to read corpora outside ``nltk.data.path`` and refuses symlinks, so the
files are copied and the data directory is added to ``nltk.data.path``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from types import ModuleType

from ehrqa.core.errors import BackendUnavailableError

DEBIAN_WORDNET = Path("/usr/share/wordnet")
APT_FIX = "apt-get install -y wordnet-base wordnet-sense-index"
_POS = ("adj", "adv", "noun", "verb")
#: Files copied from the Debian directory; all must exist there.
REQUIRED_FILES = (
    *(f"index.{pos}" for pos in _POS),
    *(f"data.{pos}" for pos in _POS),
    *(f"{pos}.exc" for pos in _POS),
    "index.sense",
)
#: Copied when present (nltk reads it only for ``Lemma.count()``).
OPTIONAL_FILES = ("cntlist.rev",)

# The WordNet 3.0 lexicographer files: number, name, syntactic category (1 noun, 2 verb,
# 3 adjective, 4 adverb). Names and order as in lexnames(5WN) of the Debian `wordnet`
# package; every synset's lex_filenum in the data files falls in its part of speech here.
LEXNAMES = """\
00\tadj.all\t3
01\tadj.pert\t3
02\tadv.all\t4
03\tnoun.Tops\t1
04\tnoun.act\t1
05\tnoun.animal\t1
06\tnoun.artifact\t1
07\tnoun.attribute\t1
08\tnoun.body\t1
09\tnoun.cognition\t1
10\tnoun.communication\t1
11\tnoun.event\t1
12\tnoun.feeling\t1
13\tnoun.food\t1
14\tnoun.group\t1
15\tnoun.location\t1
16\tnoun.motive\t1
17\tnoun.object\t1
18\tnoun.person\t1
19\tnoun.phenomenon\t1
20\tnoun.plant\t1
21\tnoun.possession\t1
22\tnoun.process\t1
23\tnoun.quantity\t1
24\tnoun.relation\t1
25\tnoun.shape\t1
26\tnoun.state\t1
27\tnoun.substance\t1
28\tnoun.time\t1
29\tverb.body\t2
30\tverb.change\t2
31\tverb.cognition\t2
32\tverb.communication\t2
33\tverb.competition\t2
34\tverb.consumption\t2
35\tverb.contact\t2
36\tverb.creation\t2
37\tverb.emotion\t2
38\tverb.motion\t2
39\tverb.perception\t2
40\tverb.possession\t2
41\tverb.social\t2
42\tverb.stative\t2
43\tverb.weather\t2
44\tadj.ppl\t3
"""


def default_data_dir() -> Path:
    """Where the corpus is built: the first ``$NLTK_DATA`` entry, else ``$EHRQA_HOME/nltk_data``.

    ``$EHRQA_HOME`` defaults to ``platformdirs.user_data_dir("ehrqa")``.
    """
    env = os.environ.get("NLTK_DATA", "")
    first = env.split(os.pathsep)[0] if env else ""
    if first:
        return Path(first)
    from ehrqa.core.config import default_home

    return default_home() / "nltk_data"


def _import_nltk() -> ModuleType:
    try:
        import nltk
    except ImportError as exc:
        raise BackendUnavailableError(
            "METEOR needs nltk: pip install 'ehrqa[eval]' (or pip install nltk)"
        ) from exc
    return nltk


def _add_to_nltk_path(data_dir: Path) -> None:
    nltk = _import_nltk()
    if str(data_dir) not in nltk.data.path:
        nltk.data.path.append(str(data_dir))


def _found_by_nltk() -> Path | None:
    """The wordnet corpus nltk already finds on ``nltk.data.path``, if any."""
    nltk = _import_nltk()
    for resource in ("corpora/wordnet", "corpora/wordnet.zip"):
        try:
            pointer = nltk.data.find(resource)
        except LookupError:
            continue
        path = getattr(pointer, "path", None)
        if path is None:  # a ZipFilePathPointer
            path = pointer.zipfile.filename
        return Path(path)
    return None


def _is_complete(corpus: Path) -> bool:
    names = (*REQUIRED_FILES, "lexnames")
    return all((corpus / name).is_file() for name in names)


def build_wordnet(data_dir: Path, source: Path = DEBIAN_WORDNET) -> Path:
    """Copy the Debian WordNet files into ``data_dir/corpora/wordnet`` and write ``lexnames``.

    Returns the corpus directory. Raises :class:`BackendUnavailableError` naming the apt
    command when a Debian file is missing.
    """
    missing = [name for name in REQUIRED_FILES if not (source / name).is_file()]
    if missing:
        raise BackendUnavailableError(
            f"WordNet 3.0 files missing from {source} ({', '.join(missing)}); METEOR needs "
            f"them offline: {APT_FIX}"
        )
    corpus = data_dir / "corpora" / "wordnet"
    corpus.mkdir(parents=True, exist_ok=True)
    names = REQUIRED_FILES + tuple(n for n in OPTIONAL_FILES if (source / n).is_file())
    for name in names:
        # Copy to a temporary name then rename, so a concurrent reader never sees half a file.
        partial = corpus / f"{name}.partial"
        shutil.copyfile(source / name, partial)
        partial.replace(corpus / name)
    (corpus / "lexnames").write_text(LEXNAMES, encoding="utf-8")
    return corpus


def ensure_wordnet(data_dir: Path | None = None, *, source: Path = DEBIAN_WORDNET) -> Path:
    """Make nltk's ``wordnet`` corpus available offline; return its location.

    With ``data_dir=None``: if nltk already finds a wordnet corpus, return it unchanged;
    otherwise build it under :func:`default_data_dir`. With an explicit ``data_dir``: build
    it there unless a complete copy is already there. The data directory is added to
    ``nltk.data.path`` either way. Nothing is downloaded.
    """
    if data_dir is None:
        found = _found_by_nltk()
        if found is not None:
            return found
        data_dir = default_data_dir()
    data_dir = Path(data_dir)
    corpus = data_dir / "corpora" / "wordnet"
    if not _is_complete(corpus):
        build_wordnet(data_dir, source)
    _add_to_nltk_path(data_dir)
    return corpus
