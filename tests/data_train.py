"""A generated intent-classification export: customer messages in English and Chinese, ten intents.

A test and bench fixture, not part of the product: the trainer's tests and its benchmark train on it. The
folder it writes has exactly the shape the export writes (train.jsonl, val.jsonl, manifest.json).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

INTENTS = (
    "cancel_order",
    "track_order",
    "refund",
    "change_address",
    "change_password",
    "payment_failed",
    "return_item",
    "product_question",
    "complaint",
    "invoice",
)

SYSTEM = (
    "You are the triage assistant of an online shop. Read the customer's message and answer with "
    "exactly one intent label from this list: " + ", ".join(INTENTS) + ". Answer with the label only."
)

_EN = {
    "cancel_order": [
        "Please cancel my order {order}.",
        "I want to cancel order {order}, I ordered it by mistake.",
        "Can you stop order {order}? I don't need it anymore.",
        "cancel {order} please, changed my mind",
        "How do I cancel the {item} I bought yesterday?",
    ],
    "track_order": [
        "Where is my order {order}?",
        "My {item} has not arrived yet, can you check order {order}?",
        "When will order {order} be delivered to {city}?",
        "any update on the shipping of {order}?",
        "The tracking page for {order} has not moved for {days} days.",
    ],
    "refund": [
        "I was charged twice for order {order}, I want my money back.",
        "When will I get the refund for the {item}?",
        "Please refund order {order}.",
        "I returned the {item} {days} days ago and still no refund.",
        "refund {order} pls",
    ],
    "change_address": [
        "I moved to {city}, please change the delivery address of {order}.",
        "Can you ship order {order} to my office in {city} instead?",
        "Wrong street on order {order}, it should go to {city}.",
        "update shipping address for {order} to {city}",
    ],
    "change_password": [
        "I forgot my password and cannot log in.",
        "How do I change my account password?",
        "The password reset email never arrives.",
        "please reset my password, locked out",
        "I think someone knows my password, I want to change it.",
    ],
    "payment_failed": [
        "My card was declined when I tried to pay for the {item}.",
        "Payment keeps failing at checkout for order {order}.",
        "Why does the payment page show an error for my {item}?",
        "paid with paypal but order {order} says unpaid",
    ],
    "return_item": [
        "The {item} does not fit, how do I return it?",
        "I want to send back the {item} from order {order}.",
        "Can I return a {item} after {days} days?",
        "how to print a return label for {order}",
    ],
    "product_question": [
        "Is the {item} waterproof?",
        "Does the {item} come in other colours?",
        "What size should I pick for the {item}?",
        "Is the {item} in stock in {city}?",
        "does the {item} work with 110V?",
    ],
    "complaint": [
        "Your courier was rude and threw the {item} over the fence.",
        "This is the third time order {order} is late, I am very unhappy.",
        "The {item} broke after {days} days, terrible quality.",
        "worst service ever, nobody answers my emails",
    ],
    "invoice": [
        "Can I get an invoice for order {order}?",
        "I need a VAT invoice with my company name for the {item}.",
        "The invoice for {order} has the wrong address.",
        "please email me the receipt for {order}",
    ],
}

_ZH = {
    "cancel_order": [
        "请帮我取消订单{order}。",
        "我下错单了，订单{order}不要了，取消一下。",
        "怎么取消昨天买的{item_zh}？",
        "订单{order}麻烦取消",
    ],
    "track_order": [
        "我的订单{order}到哪里了？",
        "{item_zh}还没到，帮我查一下订单{order}。",
        "订单{order}什么时候能送到{city_zh}？",
        "物流{days}天没更新了，订单{order}",
    ],
    "refund": [
        "订单{order}扣了两次钱，请退款。",
        "{item_zh}退回去{days}天了，退款还没到账。",
        "请给订单{order}退款。",
        "什么时候能收到{item_zh}的退款？",
    ],
    "change_address": [
        "我搬到{city_zh}了，请修改订单{order}的收货地址。",
        "订单{order}能改寄到{city_zh}的公司吗？",
        "订单{order}地址写错了，应该寄到{city_zh}。",
    ],
    "change_password": [
        "忘记密码了，登录不上。",
        "怎么修改账户密码？",
        "重置密码的邮件一直收不到。",
        "账号被锁了，请帮我重置密码",
    ],
    "payment_failed": [
        "买{item_zh}的时候银行卡支付失败了。",
        "订单{order}结账时一直付款失败。",
        "付款页面报错，买不了{item_zh}。",
        "用支付宝付了钱，订单{order}还显示未付款",
    ],
    "return_item": [
        "{item_zh}尺码不合适，怎么退货？",
        "我想把订单{order}里的{item_zh}退回去。",
        "买了{days}天的{item_zh}还能退吗？",
    ],
    "product_question": [
        "{item_zh}防水吗？",
        "{item_zh}有别的颜色吗？",
        "{item_zh}选什么尺码合适？",
        "{city_zh}有{item_zh}的现货吗？",
    ],
    "complaint": [
        "快递员态度很差，把{item_zh}扔在门口。",
        "订单{order}已经第三次延误了，非常不满意。",
        "{item_zh}用了{days}天就坏了，质量太差。",
        "客服一直不回复，太差劲了",
    ],
    "invoice": [
        "订单{order}可以开发票吗？",
        "买{item_zh}需要开公司抬头的增值税发票。",
        "订单{order}的发票地址写错了。",
    ],
}

_ITEMS = [
    "jacket",
    "phone case",
    "coffee maker",
    "running shoes",
    "desk lamp",
    "backpack",
    "headphones",
    "kettle",
]
_ITEMS_ZH = ["外套", "手机壳", "咖啡机", "跑鞋", "台灯", "双肩包", "耳机", "电水壶"]
_CITIES = ["Berlin", "Lyon", "Austin", "Osaka", "Madrid", "Leeds", "Porto"]
_CITIES_ZH = ["上海", "成都", "杭州", "深圳", "武汉", "西安"]


_OPENERS = ["", "", "Hi, ", "Hello, ", "Hey, ", "Good morning, ", "Excuse me, "]
_CLOSERS = ["", "", " Thanks.", " Thank you!", " Please help.", " ASAP please."]
_OPENERS_ZH = ["", "", "你好，", "您好，", "麻烦问一下，", "客服你好，"]
_CLOSERS_ZH = ["", "", "谢谢。", "多谢！", "急！", "麻烦尽快处理。"]


def classification_records(n: int, *, seed: int = 0, chinese_share: float = 0.3) -> list[dict]:
    """`n` labelled records (system prompt listing the labels, one customer message, the label as answer),
    no two with the same message."""
    rng = random.Random(seed)
    records, seen = [], set()
    for i in range(n):
        intent = INTENTS[i % len(INTENTS)]
        for _attempt in range(50):
            zh = rng.random() < chinese_share
            template = rng.choice((_ZH if zh else _EN)[intent])
            text = template.format(
                order=f"#{rng.randint(10000, 99999)}",
                item=rng.choice(_ITEMS),
                item_zh=rng.choice(_ITEMS_ZH),
                city=rng.choice(_CITIES),
                city_zh=rng.choice(_CITIES_ZH),
                days=rng.randint(2, 30),
            )
            if zh:
                text = rng.choice(_OPENERS_ZH) + text + rng.choice(_CLOSERS_ZH)
            else:
                opener = rng.choice(_OPENERS)
                text = opener + (text[0].lower() + text[1:] if opener else text) + rng.choice(_CLOSERS)
            if text not in seen:
                break
        seen.add(text)
        records.append(
            {
                "messages": [
                    {"role": "system", "content": SYSTEM, "loss_weight": 0.0},
                    {"role": "user", "content": text, "loss_weight": 0.0},
                    {"role": "assistant", "content": intent, "loss_weight": 1.0},
                ],
                "id": i + 1,
                "category": "intent",
                "source": "badcase",
            }
        )
    rng.shuffle(records)
    return records


def write_export(
    folder: Path,
    train: list[dict],
    val: list[dict],
    *,
    name: str = "synthetic",
    contracts: dict | None = None,
    task_types: dict | None = None,
) -> Path:
    """Write `train`/`val` records as an export folder (the export's file layout and manifest keys)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    texts = {}
    for split, records in (("train", train), ("val", val)):
        texts[split] = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
        (folder / f"{split}.jsonl").write_text(texts[split], encoding="utf-8")
    digest = hashlib.sha256((texts["train"] + "\0" + texts["val"]).encode()).hexdigest()
    categories = sorted({r.get("category") for r in train + val if r.get("category")})
    manifest = {
        "name": name,
        "hash": digest,
        "config": {"generator": "workbench.train.synthetic"},
        "seed": 0,
        "counts": {"train": len(train), "val": len(val)},
        "categories": categories,
        "contracts": contracts or {},
        "task_types": task_types or {},
    }
    (folder / "manifest.json").write_text(
        json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8"
    )
    return folder


def write_classification_export(
    folder: Path, n: int = 200, *, val_share: float = 0.1, seed: int = 0, chinese_share: float = 0.3
) -> Path:
    """The generated intent export: `n` records, `val_share` of them held out, with a labels contract."""
    records = classification_records(n, seed=seed, chinese_share=chinese_share)
    n_val = max(1, round(n * val_share))
    return write_export(
        folder,
        records[n_val:],
        records[:n_val],
        name="intents",
        contracts={"intent": {"kind": "labels", "spec": list(INTENTS)}},
        task_types={"intent": "classification"},
    )


def write_tiny_model(
    folder: Path,
    *,
    tokenizer_from: str | None = None,
    models_dir: Path | None = None,
    hidden_size: int = 32,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """A tiny randomly initialised llama (with a real tokenizer and chat template, by default the embedded
    model's) for fast tests of the trainer's mechanics: it trains in seconds and knows nothing."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from workbench.models import end_of_turn_ids, load_tokenizer

    folder = Path(folder)
    tok = load_tokenizer(tokenizer_from, models_dir)
    torch.manual_seed(seed)
    eos = tok.eos_token_id
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=4096,
        bos_token_id=tok.bos_token_id,
        eos_token_id=eos,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
        tie_word_embeddings=True,
    )
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(
        eos_token_id=end_of_turn_ids(tokenizer_from, models_dir) or eos,
        pad_token_id=config.pad_token_id,
        bos_token_id=tok.bos_token_id,
    )
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


# --- two labelling tasks whose records share a system prompt, as users write them (the bench's shared-prompt
# case): English banking intents and Chinese topic domains, the label list in the system prompt.

BANKING = {
    "card_lost": [
        "I lost my {card} card somewhere in {city}.",
        "my {card} card got stolen yesterday, what do I do",
        "Can't find my debit card anywhere, I think I left it at {place}.",
        "someone took my wallet with my {card} card in it",
        "I need to block my card, it's missing",
    ],
    "card_declined": [
        "My {card} card was declined at {place} even though I have money.",
        "why does my card keep getting rejected online?",
        "card declined again at {place}, what's wrong",
        "The terminal at {place} said my card was refused.",
        "payment with my {card} card did not go through",
    ],
    "transfer_failed": [
        "I sent {amount} to my landlord but the transfer failed.",
        "the wire transfer of {amount} bounced back",
        "My transfer to {city} has been pending for {days} days.",
        "money transfer says failed but {amount} left my account",
        "why was my transfer to my sister rejected?",
    ],
    "balance_inquiry": [
        "How much money is in my savings account?",
        "what's my current balance",
        "Can you tell me the balance of my {card} account?",
        "I want to check how much I have left this month",
        "balance please",
    ],
    "open_account": [
        "I'd like to open a new savings account.",
        "how can my daughter open an account with you?",
        "What do I need to open a business account in {city}?",
        "want to open a joint account with my wife",
        "Can I open an account online without visiting a branch?",
    ],
    "close_account": [
        "Please close my account, I'm moving to another bank.",
        "how do I shut down my savings account",
        "I want to cancel my account and get the {amount} left sent to me.",
        "close my {card} account effective today",
        "I no longer need my account in {city}, close it",
    ],
    "loan_question": [
        "What's the interest rate on a car loan?",
        "can I borrow {amount} for home repairs?",
        "How long does a mortgage approval take?",
        "am I eligible for a personal loan of {amount}",
        "I want to pay off my loan early, is there a penalty?",
    ],
    "fees_dispute": [
        "You charged me a {fee} fee I never agreed to.",
        "why is there a {fee} charge on my statement?",
        "I was billed {amount} in fees this month, this is wrong",
        "please refund the {fee} fee from {days} days ago",
        "there's a monthly fee I didn't know about",
    ],
    "change_pin": [
        "How do I change my card PIN?",
        "I forgot my PIN and need a new one",
        "Can I reset my PIN at the ATM in {place}?",
        "want to set a new pin for my {card} card",
        "my PIN got blocked after three tries",
    ],
}
_OPEN_EN = ["", "", "", "Hi, ", "Hello, ", "Hey there, ", "Good afternoon. ", "Quick question: ", "Urgent! "]
_CLOSE_EN = ["", "", "", " Thanks.", " Thank you in advance.", " Please help!", " Cheers", " ??"]
_SLOTS_EN = {
    "card": ["Visa", "Mastercard", "credit", "debit", "travel", "gold"],
    "city": ["Chicago", "Dublin", "Toronto", "Sydney", "Manchester", "Denver"],
    "place": ["the supermarket", "a gas station", "the airport", "Amazon", "a restaurant", "the pharmacy"],
    "amount": ["$250", "$1,200", "€80", "£500", "$3,000", "$45"],
    "fee": ["overdraft", "foreign transaction", "maintenance", "late payment", "ATM"],
    "days": ["2", "3", "5", "10", "14"],
}

DOMAINS = {
    "金融": [
        "最近基金跌了{n}%，要不要赎回？",
        "{city}哪家银行的定期存款利率高？",
        "股票账户怎么开通融资融券？",
        "想买点国债，{n}年期的收益怎么样",
        "信用卡分期手续费怎么算？",
    ],
    "医疗": [
        "孩子发烧{n}天了，要去医院吗？",
        "{city}哪家医院看皮肤科比较好？",
        "体检报告说血脂偏高，怎么办",
        "牙疼得厉害，吃什么药能缓解？",
        "挂号要提前几天预约专家号？",
    ],
    "教育": [
        "孩子{n}年级数学跟不上，报什么辅导班好？",
        "考研英语怎么复习？",
        "{city}有哪些好的国际学校？",
        "在职读研究生需要什么条件",
        "高考志愿怎么填比较稳？",
    ],
    "旅游": [
        "五一想去{city}玩{n}天，有什么推荐路线？",
        "办日本签证需要准备什么材料？",
        "带老人出游去哪里比较轻松",
        "{city}的酒店住哪个区方便？",
        "自驾去西藏要注意什么？",
    ],
    "餐饮": [
        "{city}有什么好吃的火锅店？",
        "想开一家奶茶店，大概要投资多少？",
        "外卖送来的菜是凉的，怎么处理",
        "请推荐几个适合{n}人聚餐的餐厅",
        "红烧肉怎么做才不腻？",
    ],
    "房产": [
        "{city}现在适合买房吗？",
        "二手房过户要交哪些税？",
        "租房合同到期房东要涨价{n}%，合理吗",
        "公积金贷款最多能贷多少？",
        "新房交付发现墙面开裂怎么办？",
    ],
    "汽车": [
        "车开了{n}万公里，该换什么保养项目？",
        "新能源车和油车哪个更划算？",
        "{city}上牌需要摇号吗",
        "发动机故障灯亮了还能开吗？",
        "二手车怎么看有没有泡过水？",
    ],
    "体育": [
        "今晚的足球比赛几点开始？",
        "每天跑步{n}公里膝盖会受伤吗？",
        "{city}哪里有好的羽毛球馆？",
        "NBA季后赛谁最有希望夺冠",
        "健身新手一周练几次合适？",
    ],
}
_OPEN_ZH = ["", "", "", "你好，", "请问", "问一下，", "各位好，", "急问：", "求助，"]
_CLOSE_ZH = ["", "", "", "谢谢！", "多谢。", "在线等。", "求解答", "？？"]
_SLOTS_ZH = {
    "city": ["北京", "上海", "广州", "成都", "杭州", "西安", "长沙"],
    "n": ["2", "3", "5", "10", "15", "20"],
}

BANKING_SYSTEM = (
    "You are a customer support assistant for a retail bank. Your job is to classify each customer message "
    "into exactly one of the following intents:\n"
    "- card_lost: the customer's card is lost or stolen\n"
    "- card_declined: a card payment was refused\n"
    "- transfer_failed: a money transfer failed, bounced or is stuck\n"
    "- balance_inquiry: the customer asks how much money they have\n"
    "- open_account: the customer wants to open an account\n"
    "- close_account: the customer wants to close an account\n"
    "- loan_question: questions about loans, mortgages and interest rates\n"
    "- fees_dispute: the customer disagrees with a fee or charge\n"
    "- change_pin: changing, resetting or unblocking a PIN\n"
    "Reply with the intent name only, exactly as written above, without any explanation."
)

DOMAINS_SYSTEM = (
    "你是一个问题分类助手。请阅读用户发来的问题，判断它属于下面哪个领域，只能选择一个：\n"
    "金融、医疗、教育、旅游、餐饮、房产、汽车、体育。\n"
    "只输出领域名称，不要解释，不要输出标点或其他内容。"
)


def shared_prompt_records(n: int, *, seed: int = 0) -> list[dict]:
    """`n` labelled records of two tasks (about two thirds English banking intents, one third Chinese domains),
    every record of a task with the task's system prompt, no two with the same message."""
    rng = random.Random(seed)
    records, seen = [], set()
    for i in range(n):
        zh = i % 3 == 2
        table, slots = (DOMAINS, _SLOTS_ZH) if zh else (BANKING, _SLOTS_EN)
        labels = list(table)
        label = labels[(i // 3 * 2 + i % 3) % len(labels)] if not zh else labels[(i // 3) % len(labels)]
        for _attempt in range(50):
            text = rng.choice(table[label]).format(**{k: rng.choice(v) for k, v in slots.items()})
            if zh:
                text = rng.choice(_OPEN_ZH) + text + rng.choice(_CLOSE_ZH)
            else:
                opener = rng.choice(_OPEN_EN)
                text = (
                    opener
                    + (text[0].lower() + text[1:] if opener.endswith(", ") else text)
                    + rng.choice(_CLOSE_EN)
                )
            if text not in seen:
                break
        seen.add(text)
        records.append(
            {
                "messages": [
                    {"role": "system", "content": DOMAINS_SYSTEM if zh else BANKING_SYSTEM},
                    {"role": "user", "content": text},
                    {"role": "assistant", "content": label},
                ],
                "id": i + 1,
                "category": "domain" if zh else "banking_intent",
                "source": "badcase",
            }
        )
    rng.shuffle(records)
    return records


SHARED_PROMPT_CONTRACTS = {
    "banking_intent": {"kind": "labels", "spec": list(BANKING)},
    "domain": {"kind": "labels", "spec": list(DOMAINS)},
}


def write_shared_prompt_export(folder: Path, n: int = 500, *, val_share: float = 0.1, seed: int = 0) -> Path:
    """The two tasks as an export: `n` records, `val_share` of them held out, labels contracts on both."""
    records = shared_prompt_records(n, seed=seed)
    n_val = max(1, round(n * val_share))
    return write_export(
        folder,
        records[n_val:],
        records[:n_val],
        name="shared-prompts",
        contracts=SHARED_PROMPT_CONTRACTS,
        task_types={"banking_intent": "classification", "domain": "classification"},
    )
