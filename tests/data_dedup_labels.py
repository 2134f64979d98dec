"""Hand-written labelled sets for deduplication and clustering, in English and Chinese.

NEAR_DUPLICATES_*: each inner list is one request and its near-copies (the same request with small
edits: punctuation, a different order number or amount, a typo, casing, a filler word). Every pair
inside a family must be grouped; no pair across families may be.
Several families are written as look-alikes of another family (same words, a different ask); those
pairs are listed in NEVER_MERGE and must never share a group.
PARAPHRASES_*: each inner list says one request in different words (for clustering).
HELD_OUT_*: a second, smaller set written after the thresholds were chosen, to check they carry over.
"""

NEAR_DUPLICATES_EN: list[list[str]] = [
    [
        "Please cancel my order #48213, I no longer need it.",
        "please cancel my order #48213 I no longer need it",
        "Please cancel my order #55102, I no longer need it.",
        "Please cancle my order #48213, I no longer need it.",
    ],
    [
        "Please confirm my order #48213, I still need it.",
        "Please confirm my order #48213. I still need it!",
        "Please confirm my order #60977, I still need it.",
        "Please comfirm my order #48213, I still need it.",
    ],
    [
        "Can you cancel my order 771204?",
        "Can you cancel my order 771204",
        "can you cancel my order 903311?",
        "Can you cancel my ordr 771204?",
    ],
    [
        "Can you confirm my order 771204?",
        "Can you confirm my order 771204??",
        "Can you confirm my order 128845?",
        "Can you confrim my order 771204?",
    ],
    [
        "I want a refund for the blender I bought last week.",
        "I want a refund for the blender I bought last week!",
        "I want a refund for the blender i bought last week",
        "I want a refnud for the blender I bought last week.",
    ],
    [
        "I want to reorder the blender I bought last week.",
        "I want to reorder the blender I bought last week!",
        "i want to reorder the blender I bought last week",
        "I want to reoder the blender I bought last week.",
    ],
    [
        "How do I change my delivery address?",
        "How do I change my delivery address",
        "how do i change my delivery address?",
        "How do I chnage my delivery address?",
    ],
    [
        "How do I change my account password?",
        "How do I change my account password",
        "How do I change my account password??",
        "How do I change my acount password?",
    ],
    [
        "Where is my package? The tracking number is 1Z999AA10123456784.",
        "Where is my package? Tracking number is 1Z999AA10123456784",
        "Where is my package? The tracking number is 1Z999AA10987654321.",
        "Where is my pakage? The tracking number is 1Z999AA10123456784.",
    ],
    [
        "I was charged twice for order 5521, please fix it.",
        "I was charged twice for order 5521 - please fix it",
        "I was charged twice for order 8830, please fix it.",
        "I was charged twise for order 5521, please fix it.",
    ],
    [
        "Translate this sentence into French: The meeting starts at 9 am.",
        "Translate this sentence into French: the meeting starts at 9am.",
        "Translate this sentence into French: The meeting starts at 10 am.",
        "Translate this sentance into French: The meeting starts at 9 am.",
    ],
    [
        "Translate this sentence into German: The meeting starts at 9 am.",
        "Translate this sentence into German - The meeting starts at 9 am.",
        "Translate this sentence into German: The meeting starts at 11 am.",
        "Translate this sentence into Germna: The meeting starts at 9 am.",
    ],
    [
        "Summarize this article in three bullet points.",
        "Summarize this article in 3 bullet points.",
        "summarize this article in three bullet points",
        "Summarise this article in three bullet points.",
    ],
    [
        "Write a Python function that reverses a linked list.",
        "Write a python function that reverses a linked list",
        "Write a Python function that reverses a linked list!",
        "Write a Python fucntion that reverses a linked list.",
    ],
    [
        "Write a Python function that sorts a linked list.",
        "write a Python function that sorts a linked list.",
        "Write a Python function that sorts a linked list!!",
        "Write a Pyhton function that sorts a linked list.",
    ],
    [
        "What is the capital of Australia?",
        "what is the capital of australia",
        "What's the capital of Australia?",
        "What is the captial of Australia?",
    ],
    [
        "My invoice INV-2024-0113 shows the wrong VAT number, can you correct it?",
        "My invoice INV-2024-0113 shows the wrong VAT number. Can you correct it?",
        "My invoice INV-2024-0287 shows the wrong VAT number, can you correct it?",
        "My invoice INV-2024-0113 shows the wrong VAT numbr, can you correct it?",
    ],
    [
        "Please unsubscribe me from the weekly newsletter.",
        "Please unsubscribe me from the weekly newsletter!",
        "please unsubscribe me from the weekly news letter",
        "Please unsubscibe me from the weekly newsletter.",
    ],
    [
        "Please subscribe me to the weekly newsletter.",
        "Please subscribe me to the weekly newsletter!",
        "please subscribe me to the weekly newsletter",
        "Please subscrbe me to the weekly newsletter.",
    ],
    [
        "The app crashes when I upload a photo larger than 10 MB.",
        "The app crashes when I upload a photo larger than 12 MB.",
        "the app crashes when i upload a photo larger than 10MB",
        "The app crashes when I upload a foto larger than 10 MB.",
    ],
    [
        "Book a table for 4 people at 7 pm tomorrow.",
        "Book a table for 6 people at 7 pm tomorrow.",
        "Book a table for 4 people at 7pm tomorrow",
        "Book a tabel for 4 people at 7 pm tomorrow.",
    ],
    [
        "Cancel the table I booked for 4 people at 7 pm tomorrow.",
        "Cancel the table I booked for 2 people at 7 pm tomorrow.",
        "cancel the table I booked for 4 people at 7pm tomorrow",
        "Cancel the table I boked for 4 people at 7 pm tomorrow.",
    ],
    [
        "Is this jacket available in size M?",
        "Is this jacket available in size L?",
        "is this jacket available in size M",
        "Is this jacket avaliable in size M?",
    ],
    [
        "Explain the difference between a list and a tuple in Python.",
        "Explain the difference between a list and a tuple in Python?",
        "explain the difference between a list and a tuple in python",
        "Explain the diffrence between a list and a tuple in Python.",
    ],
    [
        "I can't log in, it says my account is locked after 3 attempts.",
        "I can't log in - it says my account is locked after 5 attempts.",
        "I cant log in, it says my account is locked after 3 attempts",
        "I can't log in, it says my acount is locked after 3 attempts.",
    ],
    [
        "Send me a copy of my receipt for order 33019 by email.",
        "Send me a copy of my receipt for order 41277 by email.",
        "send me a copy of my receipt for order 33019 by email",
        "Send me a copy of my reciept for order 33019 by email.",
    ],
    [
        "Give me a recipe for vegan chocolate cake.",
        "Give me a recipe for vegan chocolate cake!",
        "give me a recipe for vegan chocolate cake",
        "Give me a recipe for vegan chocolat cake.",
    ],
    [
        "Give me a recipe for vegan carrot cake.",
        "Give me a recipe for vegan carrot cake!",
        "give me a recipe for vegan carrot cake",
        "Give me a recipe for vegan carot cake.",
    ],
]

NEAR_DUPLICATES_ZH: list[list[str]] = [
    ["帮我取消这个订单", "帮我取消这个订单！", "帮我取消这个订单。", "帮我取消这个定单"],
    ["帮我确认这个订单", "帮我确认这个订单！", "帮我确认这个订单。", "帮我确任这个订单"],
    [
        "我要退款，订单号 20240518113，商品有破损",
        "我要退款，订单号20240518113，商品有破损。",
        "我要退款，订单号 20240611907，商品有破损",
        "我要退款，订单号 20240518113，商品有破顺",
    ],
    [
        "我要重新下单，订单号 20240518113，商品有破损",
        "我要重新下单，订单号20240518113，商品有破损。",
        "我要重新下单，订单号 20240702345，商品有破损",
        "我要重新下单，订单号 20240518113，商品有破顺",
    ],
    ["怎么修改收货地址？", "怎么修改收货地址", "怎么修改收货地址？？", "怎么修改收获地址？"],
    ["怎么修改登录密码？", "怎么修改登录密码", "怎么修改登录密码？！", "怎么修改登陆密码？"],
    [
        "我的快递到哪了？单号 SF1234567890",
        "我的快递到哪了 单号SF1234567890",
        "我的快递到哪了？单号 SF9876543210",
        "我的快递到那了？单号 SF1234567890",
    ],
    [
        "同一个订单 5521 被扣了两次钱，请处理一下",
        "同一个订单5521被扣了两次钱，请处理一下。",
        "同一个订单 8830 被扣了两次钱，请处理一下",
        "同一个订单 5521 被扣了两次前，请处理一下",
    ],
    [
        "把这句话翻译成英文：会议上午九点开始。",
        "把这句话翻译成英文: 会议上午九点开始",
        "把这句话翻译成英文：会议上午十点开始。",
        "把这句话翻译成英文：会义上午九点开始。",
    ],
    [
        "把这句话翻译成日文：会议上午九点开始。",
        "把这句话翻译成日文: 会议上午九点开始",
        "把这句话翻译成日文：会议上午十点开始。",
        "把这句话翻译成日文：会议上午九点开使。",
    ],
    ["用三句话总结这篇文章", "用三句话总结这篇文章。", "用3句话总结这篇文章", "用三句话总节这篇文章"],
    [
        "写一个 Python 函数，反转一个链表",
        "写一个Python函数，反转一个链表。",
        "写一个 python 函数,反转一个链表",
        "写一个 Python 函数，反转一个练表",
    ],
    [
        "写一个 Python 函数，排序一个链表",
        "写一个Python函数，排序一个链表。",
        "写一个 python 函数,排序一个链表",
        "写一个 Python 函数，排序一个练表",
    ],
    ["澳大利亚的首都是哪里？", "澳大利亚的首都是哪里", "澳大利亚的首都是哪里？？", "澳大利亚的首都是那里？"],
    [
        "我的发票 INV-2024-0113 税号写错了，能帮我改一下吗？",
        "我的发票INV-2024-0113税号写错了，能帮我改一下吗",
        "我的发票 INV-2024-0287 税号写错了，能帮我改一下吗？",
        "我的发票 INV-2024-0113 税号写错了，能帮我该一下吗？",
    ],
    [
        "请帮我退订每周的新闻邮件",
        "请帮我退订每周的新闻邮件。",
        "请帮我退订每周的新闻邮件！",
        "请帮我退定每周的新闻邮件",
    ],
    [
        "请帮我订阅每周的新闻邮件",
        "请帮我订阅每周的新闻邮件。",
        "请帮我订阅每周的新闻邮件！",
        "请帮我订阅每周的新闻油件",
    ],
    [
        "上传超过 10MB 的照片时 App 会闪退",
        "上传超过 12MB 的照片时 App 会闪退",
        "上传超过10MB的照片时app会闪退。",
        "上传超过 10MB 的照片时 App 会闪推",
    ],
    [
        "帮我订明天晚上 7 点 4 个人的位子",
        "帮我订明天晚上 7 点 6 个人的位子",
        "帮我订明天晚上7点4个人的位子。",
        "帮我订明天晚上 7 点 4 个人的位置",
    ],
    [
        "帮我取消明天晚上 7 点 4 个人的位子",
        "帮我取消明天晚上 7 点 2 个人的位子",
        "帮我取消明天晚上7点4个人的位子。",
        "帮我取消明天晚上 7 点 4 个人的位置",
    ],
    ["这件夹克有 M 码吗？", "这件夹克有 L 码吗？", "这件夹克有M码吗", "这件夹克有 M 吗吗？"],
    [
        "解释一下 Python 里列表和元组的区别",
        "解释一下 Python 里列表和元组的区别。",
        "解释一下python里列表和元组的区别",
        "解释一下 Python 里列表和元祖的区别",
    ],
    [
        "我登录不了，提示输错 3 次账号被锁了",
        "我登录不了，提示输错 5 次账号被锁了",
        "我登录不了,提示输错3次账号被锁了。",
        "我登陆不了，提示输错 3 次账号被锁了",
    ],
    [
        "把订单 33019 的收据发到我邮箱",
        "把订单 41277 的收据发到我邮箱",
        "把订单33019的收据发到我邮箱。",
        "把订单 33019 的收据发到我油箱",
    ],
    [
        "给我一个素食巧克力蛋糕的做法",
        "给我一个素食巧克力蛋糕的做法！",
        "给我一个素食巧克力蛋糕的做法。",
        "给我一个素食巧克力蛋搞的做法",
    ],
    [
        "给我一个素食胡萝卜蛋糕的做法",
        "给我一个素食胡萝卜蛋糕的做法！",
        "给我一个素食胡萝卜蛋糕的做法。",
        "给我一个素食胡罗卜蛋糕的做法",
    ],
    [
        "帮我查一下这个订单的物流",
        "帮我查一下这个订单的物流。",
        "帮我查一下这个订单的物流！",
        "帮我查一下这个订单的无流",
    ],
    [
        "帮我催一下这个订单的物流",
        "帮我催一下这个订单的物流。",
        "帮我催一下这个订单的物流！",
        "帮我催一下这个订单的无流",
    ],
]

# Look-alike requests: nearly the same words, a different ask. Any variant of one and any variant
# of the other must never share a duplicate group.
NEVER_MERGE: list[tuple[str, str]] = [
    (
        "Please cancel my order #48213, I no longer need it.",
        "Please confirm my order #48213, I still need it.",
    ),
    ("Can you cancel my order 771204?", "Can you confirm my order 771204?"),
    (
        "I want a refund for the blender I bought last week.",
        "I want to reorder the blender I bought last week.",
    ),
    ("How do I change my delivery address?", "How do I change my account password?"),
    (
        "Translate this sentence into French: The meeting starts at 9 am.",
        "Translate this sentence into German: The meeting starts at 9 am.",
    ),
    (
        "Write a Python function that reverses a linked list.",
        "Write a Python function that sorts a linked list.",
    ),
    ("Please unsubscribe me from the weekly newsletter.", "Please subscribe me to the weekly newsletter."),
    (
        "Book a table for 4 people at 7 pm tomorrow.",
        "Cancel the table I booked for 4 people at 7 pm tomorrow.",
    ),
    ("Give me a recipe for vegan chocolate cake.", "Give me a recipe for vegan carrot cake."),
    ("帮我取消这个订单", "帮我确认这个订单"),
    ("我要退款，订单号 20240518113，商品有破损", "我要重新下单，订单号 20240518113，商品有破损"),
    ("怎么修改收货地址？", "怎么修改登录密码？"),
    ("把这句话翻译成英文：会议上午九点开始。", "把这句话翻译成日文：会议上午九点开始。"),
    ("写一个 Python 函数，反转一个链表", "写一个 Python 函数，排序一个链表"),
    ("请帮我退订每周的新闻邮件", "请帮我订阅每周的新闻邮件"),
    ("帮我订明天晚上 7 点 4 个人的位子", "帮我取消明天晚上 7 点 4 个人的位子"),
    ("给我一个素食巧克力蛋糕的做法", "给我一个素食胡萝卜蛋糕的做法"),
    ("帮我查一下这个订单的物流", "帮我催一下这个订单的物流"),
]

# One request in different words; used for clustering (paraphrases should share a cluster).
PARAPHRASES_EN: list[list[str]] = [
    [
        "I want my money back for this order.",
        "Can I get a refund on my purchase?",
        "Please refund the amount I paid.",
        "How do I request a refund for an item I bought?",
    ],
    [
        "Where is my parcel right now?",
        "My package hasn't arrived yet, can you track it?",
        "Can you tell me the delivery status of my shipment?",
        "When will my order be delivered?",
    ],
    [
        "I forgot my password and can't sign in.",
        "How do I reset my login password?",
        "I need to recover access to my account, the password doesn't work.",
        "Help me reset my password.",
    ],
    [
        "Translate 'good morning' into Spanish.",
        "How do you say good morning in Spanish?",
        "What is 'good morning' in Spanish?",
        "Give me the Spanish for good morning.",
    ],
    [
        "Write a haiku about autumn leaves.",
        "Compose a short haiku on falling leaves in autumn.",
        "Can you write me an autumn haiku about leaves?",
        "I'd like a haiku describing autumn foliage.",
    ],
    [
        "What's the weather going to be like tomorrow?",
        "Will it rain tomorrow?",
        "Give me tomorrow's weather forecast.",
        "Is tomorrow going to be sunny or rainy?",
    ],
    [
        "Fix the bug in my Python loop, it never ends.",
        "My Python while loop runs forever, how do I fix it?",
        "Why does my Python loop not terminate?",
        "Help me debug an infinite loop in Python.",
    ],
    [
        "Recommend a good science fiction novel.",
        "What sci-fi book should I read next?",
        "Suggest a great science fiction book to read.",
        "Can you recommend some sci-fi novels?",
    ],
]

PARAPHRASES_ZH: list[list[str]] = [
    ["这个订单我要退钱", "能帮我把这单的钱退回来吗？", "请给我办理退款", "我买的东西怎么申请退款？"],
    ["我的包裹现在到哪了？", "快递还没到，帮我查一下物流", "我的货什么时候能送到？", "帮我看看我的快递状态"],
    ["我忘记密码了，登录不上", "怎么重置登录密码？", "密码不对进不去账号了，怎么找回", "帮我重设一下密码"],
    [
        "把“早上好”翻译成西班牙语",
        "早上好用西班牙语怎么说？",
        "西班牙语的早上好是什么",
        "早上好的西班牙语翻译",
    ],
    [
        "写一首关于秋天落叶的俳句",
        "以秋叶为题写一首俳句",
        "给我写首秋天树叶的俳句",
        "来一首描写秋天落叶的短诗",
    ],
    ["明天天气怎么样？", "明天会下雨吗？", "告诉我明天的天气预报", "明天是晴天还是雨天？"],
    [
        "我的 Python 循环停不下来，帮我改一下",
        "Python 的 while 循环一直在跑，怎么修？",
        "为什么我的 Python 循环不会结束？",
        "帮我调试一个 Python 死循环",
    ],
    ["推荐一本好看的科幻小说", "下一本该读什么科幻书？", "给我推荐几本科幻小说", "有什么值得看的科幻书？"],
]

# Written after the defaults were fixed, to check they were not tuned to the sets above.
HELD_OUT_EN: list[list[str]] = [
    [
        "Please pause my subscription for two months.",
        "Please pause my subscription for 3 months.",
        "please pause my subscription for two months",
        "Please pasue my subscription for two months.",
    ],
    [
        "Please resume my subscription from next month.",
        "Please resume my subscription from next month!",
        "please resume my subscription from next month",
        "Please resum my subscription from next month.",
    ],
    [
        "My coupon code SAVE20 doesn't work at checkout.",
        "My coupon code SAVE25 doesn't work at checkout.",
        "my coupon code SAVE20 doesnt work at checkout",
        "My coupon code SAVE20 doesn't work at chekout.",
    ],
    [
        "Convert 72 degrees Fahrenheit to Celsius.",
        "Convert 85 degrees Fahrenheit to Celsius.",
        "convert 72 degrees fahrenheit to celsius",
        "Convert 72 degrees Farenheit to Celsius.",
    ],
    [
        "Convert 72 degrees Celsius to Fahrenheit.",
        "Convert 85 degrees Celsius to Fahrenheit.",
        "convert 72 degrees celsius to fahrenheit",
        "Convert 72 degrees Celsius to Farenheit.",
    ],
]

HELD_OUT_ZH: list[list[str]] = [
    ["帮我暂停会员自动续费", "帮我暂停会员自动续费。", "帮我暂停会员自动续费！", "帮我暂停会员自动绪费"],
    ["帮我开通会员自动续费", "帮我开通会员自动续费。", "帮我开通会员自动续费！", "帮我开通会员自动绪费"],
    [
        "优惠码 SAVE20 结账时用不了",
        "优惠码 SAVE25 结账时用不了",
        "优惠码SAVE20结账时用不了。",
        "优惠码 SAVE20 结帐时用不了",
    ],
    [
        "把 72 华氏度换算成摄氏度",
        "把 85 华氏度换算成摄氏度",
        "把72华氏度换算成摄氏度。",
        "把 72 华式度换算成摄氏度",
    ],
    [
        "把 72 摄氏度换算成华氏度",
        "把 85 摄氏度换算成华氏度",
        "把72摄氏度换算成华氏度。",
        "把 72 摄氏度换算成华式度",
    ],
]

HELD_OUT_NEVER_MERGE: list[tuple[str, str]] = [
    ("Please pause my subscription for two months.", "Please resume my subscription from next month."),
    ("Convert 72 degrees Fahrenheit to Celsius.", "Convert 72 degrees Celsius to Fahrenheit."),
    ("帮我暂停会员自动续费", "帮我开通会员自动续费"),
    ("把 72 华氏度换算成摄氏度", "把 72 摄氏度换算成华氏度"),
]
