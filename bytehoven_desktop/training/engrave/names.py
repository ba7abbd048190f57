"""Text that names a piece, its composer or its source: never let an engraving print it.

Shared by every engraver (verovio SVG clean-up, MusicXML clean-up before LilyPond and MuseScore).
"""

from __future__ import annotations

import re

__all__ = ["CREDIT_TEXT_RE"]

# Text that looks like a title/credit line rather than a performance direction. Kept deliberately narrow
# (legitimate directions such as "Tempo di Mazurka" or "L.H." must survive).
_COMPOSER_NAMES = (
    r"bach|beethoven|brahms|chopin|grieg|liszt|mozart|haydn|scarlatti|schumann|debussy|joplin|"
    r"ko[zž]eluc?h|schubert|t[sc]+haikovsk|tschaikowsk|tchaikowsk|[cč]ajkovsk|medtner|handel|h[aä]e?ndel|"
    r"paderewski|czerny|rachmanino"
)
CREDIT_TEXT_RE = re.compile(
    r"(?:" + _COMPOSER_NAMES + r")"
    r"|copyright|\u00a9|musicalion|mutopia|www\.|https?:|\.com\b|\.org\b"
    r"|hoboken|\bhob\.|\bbwv\b|\bkv\s*\d|\bk\.\s*\d|\bop(?:us)?\.?\s*\d|\bd\.\s*\d{2,}|\bl\.\s*\d{2,}"
    r"|sonat[ea]\b|sonate in|composed|arranged|\barr\.|transcri"
    # Dedications ("Für Maria Anna Edle v. Gennzinger" heads an ASAP Haydn sonata): they name the work.
    r"|\bf(?:ü|ue)r\s|\bdedicat|\bgewidmet|\bd[ée]di[ée]",
    re.IGNORECASE,
)
