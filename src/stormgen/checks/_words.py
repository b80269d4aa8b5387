"""Word lists and case helpers for the naming rules (W506, W507).

The tense rule is a heuristic, documented in docs/language.md ("Checks: decisions").
"""

from __future__ import annotations

import itertools
import re


def _word_set(text: str) -> frozenset[str]:
    return frozenset(text.split())


PASCAL = re.compile(r"[A-Z][A-Za-z0-9]*")
SNAKE = re.compile(r"[a-z][a-z0-9_]*")
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z][a-z0-9]*|[a-z0-9]+")

# Past participles that are also the verb's base form: past tense for an event, fine
# as the first word of a command (`ResetPassword`, `SetPrice`).
SAME_AS_BASE = _word_set(
    """
    Bet Broadcast Burst Cast Come Become Cost Cut Forecast Hit Hurt Let Overcome Put
    Quit Read Reset Run Set Shut Split Spread Upset
    """
)

# Irregular past participles that differ from the base form.
IRREGULAR = _word_set(
    """
    Arisen Awoken Been Beaten Begun Bent Bitten Bled Blown Born Borne Bought Bound
    Bred Broken Brought Built Burnt Caught Chosen Clung Dealt Done Drawn Dreamt
    Driven Drunk Dug Dwelt Eaten Fallen Fed Felt Fled Flown Flung Forbidden Forgiven
    Forgotten Fought Found Frozen Given Gone Got Gotten Ground Grown Held Hidden
    Hung Kept Knelt Known Laid Lain Leant Learnt Led Left Lent Lit Lost Made Meant
    Met Paid Proven Ridden Risen Rung Said Sat Seen Sent Sewn Shaken Shaven Shone
    Shot Shown Shrunk Slept Slid Slung Sold Sought Sown Sped Spent Spilt Spoken Spun
    Sprung Stolen Stood Stuck Stung Striven Struck Strung Sung Sunk Sworn Swept Swum
    Swung Taken Taught Thought Thrown Told Torn Trodden Understood Woken Won Worn
    Wound Woven Written Wrung Slain Wept Crept Leapt Swollen Strewn Mown Hewn Shorn
    Bidden Stridden Spat
    """
)

# Irregular simple past forms (a fact too: `ProductWasOutOfStock`, `StockFell`). Only
# events read them; a command starting with one is not judged by them.
SIMPLE_PAST = _word_set(
    """
    Was Were Had Did Went Came Became Began Broke Chose Drove Fell Flew Forgot Froze
    Gave Grew Knew Ran Rode Rose Sank Shook Spoke Stole Took Threw Woke Wrote
    """
)

# Two-word phrases naming a reached state (`ProductOutOfStock`, `BackInStock`, `OnHold`).
STATE_PHRASES = frozenset({("Out", "Of"), ("In", "Stock"), ("On", "Hold")})

# Adjectives naming a reached state, accepted as event names (`DrinksReady`).
STATE_ADJECTIVES = _word_set(
    """
    Ready Due Overdue Full Empty Available Unavailable Late
    """
)

# Prefixes that keep a participle a participle (`Prepaid`, `Rebuilt`, `Withdrawn`).
_PREFIXES = ("Re", "Pre", "Un", "Over", "Under", "Out", "Mis", "With", "Up", "Fore", "Co")

# Words ending in "ed" that are not past tense.
_NOT_ED = _word_set(
    """
    Bed Red Embed Shed Shred Wed Hundred Sacred Naked Wicked
    """
)
_ED_EXCEPTIONS = _word_set(
    """
    Agreed Disagreed Freed Guaranteed Decreed Refereed
    """
)

# Base verbs ending in "ing": imperative despite the suffix.
_ING_VERBS = _word_set(
    """
    Bring Cling Ding Fling Ping Ring Sing Sling Spring Sting String Swing Wring Zing
    """
)


def words(name: str) -> list[str]:
    """Split ``PascalCase`` (or ``snake_case``) into words: ``HTTPRequestSent`` ->
    ``HTTP``, ``Request``, ``Sent``."""
    return [w[:1].upper() + w[1:] for w in _WORD.findall(name)]


def _is_participle(word: str, *, same_as_base: bool) -> bool:
    if word in IRREGULAR or (same_as_base and word in SAME_AS_BASE):
        return True
    if word.endswith("ed") and len(word) >= 4 and word not in _NOT_ED:
        return not word.endswith("eed") or word in _ED_EXCEPTIONS
    for prefix in _PREFIXES:
        rest = word[len(prefix) :]
        if word.startswith(prefix) and rest[:1].islower() and len(rest) >= 3:
            cap = rest[:1].upper() + rest[1:]
            if cap in IRREGULAR or (same_as_base and cap in SAME_AS_BASE):
                return True
    return False


def is_past_tense(name: str) -> bool:
    """Whether an event name reads as a fact: some word is a past participle, a simple
    past form or a state adjective, or two words are a state phrase."""
    ws = words(name)
    if any(pair in STATE_PHRASES for pair in itertools.pairwise(ws)):
        return True
    return any(
        _is_participle(w, same_as_base=True) or w in SIMPLE_PAST or w in STATE_ADJECTIVES
        for w in ws
    )


# Verbs that take a participle as complement: `MarkPaid`, `SetArchived`.
_COMPLEMENT_VERBS = _word_set(
    """
    Mark Set Flag Keep Make Get Leave Declare Report Record Consider Have Report
    """
)


# Verbs that are hardly ever nouns: a command starting with one is an order whatever
# word ends it (`NotifyMisdirected`, `ConfirmDelivered`), where `OrderPlaced` is not.
_VERBS_ONLY = _word_set(
    """
    Notify Inform Warn Confirm Acknowledge Approve Verify Escalate Announce
    """
)


def is_imperative(name: str) -> bool:
    """Whether a command name reads as an order (see docs/language.md for the heuristic).

    Not imperative: the first word is a past participle (`PlacedOrder`) or an -ing form
    (`PlacingOrder`), or the name ends in a regular "-ed" participle after a first word
    that does not take one as complement and is not a verb only (`OrderPlaced`, but not
    `MarkCompleted` or `NotifyMisdirected`).
    """
    ws = words(name)
    if not ws:
        return True
    first, last = ws[0], ws[-1]
    if _is_participle(first, same_as_base=False):
        return False
    if first.endswith("ing") and len(first) > 4 and first not in _ING_VERBS:
        return False
    return not (
        len(ws) > 1
        and last.endswith("ed")
        and _is_participle(last, same_as_base=False)
        and first not in _COMPLEMENT_VERBS
        and first not in _VERBS_ONLY
    )


def to_pascal(name: str) -> str:
    """``order_placed`` -> ``OrderPlaced``."""
    return "".join(w[:1].upper() + w[1:] for w in re.split(r"_+", name) if w)
