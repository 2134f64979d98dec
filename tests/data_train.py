"""A generated intent-classification export: customer messages in English and Chinese, ten intents.

A test and bench fixture, not part of the product: the trainer's tests and its benchmark train on it. The
folder it writes has exactly the shape the export writes (train.jsonl, val.jsonl, manifest.json).
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

INTENTS = ("cancel_order", "track_order", "refund", "change_address", "change_password",
           "payment_failed", "return_item", "product_question", "complaint", "invoice")

SYSTEM = ("You are the triage assistant of an online shop. Read the customer's message and answer with "
          "exactly one intent label from this list: " + ", ".join(INTENTS) + ". Answer with the label only.")

_EN = {
    "cancel_order": ["Please cancel my order {order}.", "I want to cancel order {order}, I ordered it by mistake.",
                     "Can you stop order {order}? I don't need it anymore.",
                     "cancel {order} please, changed my mind", "How do I cancel the {item} I bought yesterday?"],
    "track_order": ["Where is my order {order}?", "My {item} has not arrived yet, can you check order {order}?",
                    "When will order {order} be delivered to {city}?", "any update on the shipping of {order}?",
                    "The tracking page for {order} has not moved for {days} days."],
    "refund": ["I was charged twice for order {order}, I want my money back.",
               "When will I get the refund for the {item}?", "Please refund order {order}.",
               "I returned the {item} {days} days ago and still no refund.", "refund {order} pls"],
    "change_address": ["I moved to {city}, please change the delivery address of {order}.",
                       "Can you ship order {order} to my office in {city} instead?",
                       "Wrong street on order {order}, it should go to {city}.",
                       "update shipping address for {order} to {city}"],
    "change_password": ["I forgot my password and cannot log in.", "How do I change my account password?",
                        "The password reset email never arrives.", "please reset my password, locked out",
                        "I think someone knows my password, I want to change it."],
    "payment_failed": ["My card was declined when I tried to pay for the {item}.",
                       "Payment keeps failing at checkout for order {order}.",
                       "Why does the payment page show an error for my {item}?",
                       "paid with paypal but order {order} says unpaid"],
    "return_item": ["The {item} does not fit, how do I return it?", "I want to send back the {item} from order {order}.",
                    "Can I return a {item} after {days} days?", "how to print a return label for {order}"],
    "product_question": ["Is the {item} waterproof?", "Does the {item} come in other colours?",
                         "What size should I pick for the {item}?", "Is the {item} in stock in {city}?",
                         "does the {item} work with 110V?"],
    "complaint": ["Your courier was rude and threw the {item} over the fence.",
                  "This is the third time order {order} is late, I am very unhappy.",
                  "The {item} broke after {days} days, terrible quality.",
                  "worst service ever, nobody answers my emails"],
    "invoice": ["Can I get an invoice for order {order}?", "I need a VAT invoice with my company name for the {item}.",
                "The invoice for {order} has the wrong address.", "please email me the receipt for {order}"],
}

_ZH = {
    "cancel_order": ["请帮我取消订单{order}。", "我下错单了，订单{order}不要了，取消一下。", "怎么取消昨天买的{item_zh}？",
                     "订单{order}麻烦取消"],
    "track_order": ["我的订单{order}到哪里了？", "{item_zh}还没到，帮我查一下订单{order}。", "订单{order}什么时候能送到{city_zh}？",
                    "物流{days}天没更新了，订单{order}"],
    "refund": ["订单{order}扣了两次钱，请退款。", "{item_zh}退回去{days}天了，退款还没到账。", "请给订单{order}退款。",
               "什么时候能收到{item_zh}的退款？"],
    "change_address": ["我搬到{city_zh}了，请修改订单{order}的收货地址。", "订单{order}能改寄到{city_zh}的公司吗？",
                       "订单{order}地址写错了，应该寄到{city_zh}。"],
    "change_password": ["忘记密码了，登录不上。", "怎么修改账户密码？", "重置密码的邮件一直收不到。", "账号被锁了，请帮我重置密码"],
    "payment_failed": ["买{item_zh}的时候银行卡支付失败了。", "订单{order}结账时一直付款失败。", "付款页面报错，买不了{item_zh}。",
                       "用支付宝付了钱，订单{order}还显示未付款"],
    "return_item": ["{item_zh}尺码不合适，怎么退货？", "我想把订单{order}里的{item_zh}退回去。", "买了{days}天的{item_zh}还能退吗？"],
    "product_question": ["{item_zh}防水吗？", "{item_zh}有别的颜色吗？", "{item_zh}选什么尺码合适？", "{city_zh}有{item_zh}的现货吗？"],
    "complaint": ["快递员态度很差，把{item_zh}扔在门口。", "订单{order}已经第三次延误了，非常不满意。", "{item_zh}用了{days}天就坏了，质量太差。",
                  "客服一直不回复，太差劲了"],
    "invoice": ["订单{order}可以开发票吗？", "买{item_zh}需要开公司抬头的增值税发票。", "订单{order}的发票地址写错了。"],
}

_ITEMS = ["jacket", "phone case", "coffee maker", "running shoes", "desk lamp", "backpack", "headphones", "kettle"]
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
            text = template.format(order=f"#{rng.randint(10000, 99999)}", item=rng.choice(_ITEMS),
                                   item_zh=rng.choice(_ITEMS_ZH), city=rng.choice(_CITIES),
                                   city_zh=rng.choice(_CITIES_ZH), days=rng.randint(2, 30))
            if zh:
                text = rng.choice(_OPENERS_ZH) + text + rng.choice(_CLOSERS_ZH)
            else:
                opener = rng.choice(_OPENERS)
                text = opener + (text[0].lower() + text[1:] if opener else text) + rng.choice(_CLOSERS)
            if text not in seen:
                break
        seen.add(text)
        records.append({
            "messages": [{"role": "system", "content": SYSTEM, "loss_weight": 0.0},
                         {"role": "user", "content": text, "loss_weight": 0.0},
                         {"role": "assistant", "content": intent, "loss_weight": 1.0}],
            "id": i + 1, "category": "intent", "source": "badcase",
        })
    rng.shuffle(records)
    return records


def write_export(folder: Path, train: list[dict], val: list[dict], *, name: str = "synthetic",
                 contracts: dict | None = None, task_types: dict | None = None) -> Path:
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
        "name": name, "hash": digest, "config": {"generator": "workbench.train.synthetic"}, "seed": 0,
        "counts": {"train": len(train), "val": len(val)}, "categories": categories,
        "contracts": contracts or {}, "task_types": task_types or {},
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=2), encoding="utf-8")
    return folder


def write_classification_export(folder: Path, n: int = 200, *, val_share: float = 0.1, seed: int = 0,
                                 chinese_share: float = 0.3) -> Path:
    """The generated intent export: `n` records, `val_share` of them held out, with a labels contract."""
    records = classification_records(n, seed=seed, chinese_share=chinese_share)
    n_val = max(1, round(n * val_share))
    return write_export(folder, records[n_val:], records[:n_val], name="intents",
                        contracts={"intent": {"kind": "labels", "spec": list(INTENTS)}},
                        task_types={"intent": "classification"})


def write_tiny_model(folder: Path, *, tokenizer_from: str | None = None, models_dir: Path | None = None,
                     hidden_size: int = 32, layers: int = 2, seed: int = 0) -> Path:
    """A tiny randomly initialised llama (with a real tokenizer and chat template, by default the embedded
    model's) for fast tests of the trainer's mechanics: it trains in seconds and knows nothing."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    from workbench.models import end_of_turn_ids, load_tokenizer

    folder = Path(folder)
    tok = load_tokenizer(tokenizer_from, models_dir)
    torch.manual_seed(seed)
    eos = tok.eos_token_id
    config = LlamaConfig(vocab_size=len(tok), hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                         num_hidden_layers=layers, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=4096, bos_token_id=tok.bos_token_id, eos_token_id=eos,
                         pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else eos,
                         tie_word_embeddings=True)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=end_of_turn_ids(tokenizer_from, models_dir) or eos,
                                               pad_token_id=config.pad_token_id, bos_token_id=tok.bos_token_id)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
