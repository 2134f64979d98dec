"""Hand-written pairs for issue 18: look-alike requests that must never be grouped, near-copies that must be.

Written for this check, apart from tests/data_dedup_labels.py: customer-support and general requests in
English and Chinese, in many phrasings (not one template).

LOOKALIKES_*: (a, b, kind): two requests that share most words but ask different things. kind is
  'antonym'  (open/closed, 增加/减少), 'negation' (not, never, 不, 没, 别, 无), 'swapped' (roles or
  direction: A to B vs B to A), or 'entity' (another product, place, person or object, the rest the same).
NEAR_COPIES_*: (a, b, kind): the same request written twice. kind is 'punctuation', 'casing', 'spacing',
  'typo', 'filler' (please, just, 请, 一下, ...), 'width' (full-width vs half-width characters),
  'traditional' (traditional vs simplified Chinese) or 'number' (another order number, amount or date).
"""

LOOKALIKES_EN: list[tuple[str, str, str]] = [
    # antonyms
    ("Is the restaurant open now?", "Is the restaurant closed now?", "antonym"),
    (
        "Please increase my credit limit to 5000 dollars.",
        "Please decrease my credit limit to 5000 dollars.",
        "antonym",
    ),
    (
        "How do I enable two-factor authentication on my account?",
        "How do I disable two-factor authentication on my account?",
        "antonym",
    ),
    (
        "I want to upgrade my plan to the premium tier.",
        "I want to downgrade my plan to the premium tier.",
        "antonym",
    ),
    (
        "Turn on the notifications for new messages.",
        "Turn off the notifications for new messages.",
        "antonym",
    ),
    (
        "Show me the cheapest flights to Tokyo next week.",
        "Show me the most expensive flights to Tokyo next week.",
        "antonym",
    ),
    (
        "Sort the results in ascending order by price.",
        "Sort the results in descending order by price.",
        "antonym",
    ),
    ("How do I lock the screen on my laptop?", "How do I unlock the screen on my laptop?", "antonym"),
    ("Can you add the charger to my cart?", "Can you remove the charger from my cart?", "antonym"),
    (
        "Write a function that encrypts a file with AES.",
        "Write a function that decrypts a file with AES.",
        "antonym",
    ),
    ("My package arrived early, is that normal?", "My package arrived late, is that normal?", "antonym"),
    ("How do I import contacts from a CSV file?", "How do I export contacts to a CSV file?", "antonym"),
    ("Accept the meeting invitation for Friday.", "Decline the meeting invitation for Friday.", "antonym"),
    # negation
    ("The refund has been credited to my card.", "The refund has not been credited to my card.", "negation"),
    ("I received the confirmation email.", "I never received the confirmation email.", "negation"),
    (
        "My order arrived with the charger included.",
        "My order arrived without the charger included.",
        "negation",
    ),
    (
        "Do charge my card for the renewal this month.",
        "Don't charge my card for the renewal this month.",
        "negation",
    ),
    ("The app works when I turn on Wi-Fi.", "The app doesn't work when I turn on Wi-Fi.", "negation"),
    (
        "I can sign in to my account on the website.",
        "I cannot sign in to my account on the website.",
        "negation",
    ),
    ("Send the invoice to my billing address.", "Do not send the invoice to my billing address.", "negation"),
    (
        "Is there a fee for changing the delivery date?",
        "Is there no fee for changing the delivery date?",
        "negation",
    ),
    (
        "The discount code was applied at checkout.",
        "The discount code wasn't applied at checkout.",
        "negation",
    ),
    (
        "Explain why the loop terminates after ten steps.",
        "Explain why the loop never terminates after ten steps.",
        "negation",
    ),
    ("My phone is charging with the new cable.", "My phone is not charging with the new cable.", "negation"),
    (
        "Should I include tax in the quoted price?",
        "Should I not include tax in the quoted price?",
        "negation",
    ),
    # swapped roles or direction
    ("Convert 100 US dollars to euros.", "Convert 100 euros to US dollars.", "swapped"),
    (
        "Translate this paragraph from English into Spanish.",
        "Translate this paragraph from Spanish into English.",
        "swapped",
    ),
    (
        "Book a train ticket from London to Paris on Friday.",
        "Book a train ticket from Paris to London on Friday.",
        "swapped",
    ),
    (
        "Transfer 200 dollars from my savings account to my checking account.",
        "Transfer 200 dollars from my checking account to my savings account.",
        "swapped",
    ),
    ("Did the seller refund the buyer?", "Did the buyer refund the seller?", "swapped"),
    (
        "How far is it from Boston to New York by car?",
        "How far is it from New York to Boston by car?",
        "swapped",
    ),
    (
        "Move the files from the desktop folder into the backup folder.",
        "Move the files from the backup folder into the desktop folder.",
        "swapped",
    ),
    ("Is a kilometre longer than a mile?", "Is a mile longer than a kilometre?", "swapped"),
    ("My manager owes me two days of leave.", "I owe my manager two days of leave.", "swapped"),
    ("Convert this PDF to a Word document.", "Convert this Word document to a PDF.", "swapped"),
    (
        "Forward the customer's email to the support team.",
        "Forward the support team's email to the customer.",
        "swapped",
    ),
    (
        "Does the tenant pay the landlord for repairs?",
        "Does the landlord pay the tenant for repairs?",
        "swapped",
    ),
    # a different entity, the rest the same
    ("Cancel the blender from my last order.", "Cancel the kettle from my last order.", "entity"),
    (
        "What time does the pharmacy on Main Street close?",
        "What time does the bakery on Main Street close?",
        "entity",
    ),
    ("I want to return the blue sweater I bought.", "I want to return the red sweater I bought.", "entity"),
    (
        "How do I reset the password for my email account?",
        "How do I reset the password for my bank account?",
        "entity",
    ),
    (
        "Write a Python script that reads a CSV file.",
        "Write a Python script that reads a JSON file.",
        "entity",
    ),
    ("Ship my order to my office address.", "Ship my order to my home address.", "entity"),
    ("What is the capital of Canada?", "What is the capital of Brazil?", "entity"),
    ("Recommend a laptop for video editing.", "Recommend a laptop for gaming.", "entity"),
    (
        "My headphones stopped charging after two weeks.",
        "My speaker stopped charging after two weeks.",
        "entity",
    ),
    (
        "Add my husband as a driver on the car insurance.",
        "Add my daughter as a driver on the car insurance.",
        "entity",
    ),
    ("How many calories are in a banana?", "How many calories are in an avocado?", "entity"),
    (
        "The hotel charged me for the minibar I never used.",
        "The hotel charged me for the parking I never used.",
        "entity",
    ),
    ("Explain how a hash map works in Java.", "Explain how a linked list works in Java.", "entity"),
    ("Please keep my seat next to the window.", "Please keep my seat next to the aisle.", "entity"),
    ("I was billed after I cancelled my trial.", "I was billed before I cancelled my trial.", "antonym"),
]

LOOKALIKES_ZH: list[tuple[str, str, str]] = [
    # antonyms
    ("这家餐厅现在开门吗？", "这家餐厅现在关门吗？", "antonym"),
    ("帮我把空调温度调高两度", "帮我把空调温度调低两度", "antonym"),
    ("我想增加每月的流量套餐", "我想减少每月的流量套餐", "antonym"),
    ("请帮我取消明天的会议", "请帮我确认明天的会议", "antonym"),
    ("怎么打开手机的定位服务？", "怎么关闭手机的定位服务？", "antonym"),
    ("我想买这只股票，现在合适吗？", "我想卖这只股票，现在合适吗？", "antonym"),
    ("把列表按价格升序排列", "把列表按价格降序排列", "antonym"),
    ("帮我开启自动续费", "帮我关闭自动续费", "antonym"),
    ("怎么上传文件到网盘？", "怎么从网盘下载文件？", "antonym"),
    ("快递比预计的早到了两天", "快递比预计的晚到了两天", "antonym"),
    ("帮我写一个加密字符串的函数", "帮我写一个解密字符串的函数", "antonym"),
    ("我同意这份合同的条款", "我拒绝这份合同的条款", "antonym"),
    ("为什么我的账户余额增加了？", "为什么我的账户余额减少了？", "antonym"),
    # negation
    ("我收到退款了", "我没收到退款", "negation"),
    ("这个优惠券可以和会员折扣一起用", "这个优惠券不可以和会员折扣一起用", "negation"),
    ("请在下午六点以后送货", "请别在下午六点以后送货", "negation"),
    ("这款耳机支持降噪功能吗？", "这款耳机不支持降噪功能吗？", "negation"),
    ("订单已经发货了", "订单还未发货", "negation"),
    ("我的手机能连上公司的无线网", "我的手机连不上公司的无线网", "negation"),
    ("这件衣服有质量问题", "这件衣服没有质量问题", "negation"),
    ("我需要开发票", "我不需要开发票", "negation"),
    ("包裹里有说明书", "包裹里无说明书", "negation"),
    ("这个函数会修改传入的列表", "这个函数不会修改传入的列表", "negation"),
    ("我记得上次的登录密码", "我不记得上次的登录密码", "negation"),
    ("周末可以预约上门安装", "周末不能预约上门安装", "negation"),
    # swapped roles or direction
    ("帮我订一张从北京到上海的高铁票", "帮我订一张从上海到北京的高铁票", "swapped"),
    ("把这段话从中文翻译成英文", "把这段话从英文翻译成中文", "swapped"),
    ("从储蓄卡转 500 元到信用卡", "从信用卡转 500 元到储蓄卡", "swapped"),
    ("100 美元能换多少人民币？", "100 人民币能换多少美元？", "swapped"),
    ("卖家要给买家退运费吗？", "买家要给卖家退运费吗？", "swapped"),
    ("广州到深圳坐高铁要多久？", "深圳到广州坐高铁要多久？", "swapped"),
    ("把文件从 D 盘移到 C 盘", "把文件从 C 盘移到 D 盘", "swapped"),
    ("猫比狗更容易养吗？", "狗比猫更容易养吗？", "swapped"),
    ("房东可以扣租客的押金吗？", "租客可以扣房东的押金吗？", "swapped"),
    ("把 Word 文档转成 PDF", "把 PDF 转成 Word 文档", "swapped"),
    ("老师给学生发了一封邮件，帮我写回复", "学生给老师发了一封邮件，帮我写回复", "swapped"),
    ("公斤换算成磅怎么算？", "磅换算成公斤怎么算？", "swapped"),
    # a different entity, the rest the same
    ("帮我取消订单里的电水壶", "帮我取消订单里的榨汁机", "entity"),
    ("北京明天会下雨吗？", "上海明天会下雨吗？", "entity"),
    ("我想退掉那件黑色的外套", "我想退掉那件白色的外套", "entity"),
    ("怎么修改微信的支付密码？", "怎么修改支付宝的支付密码？", "entity"),
    ("用 Python 写一个读取 Excel 文件的脚本", "用 Python 写一个读取 PDF 文件的脚本", "entity"),
    ("把快递送到我公司", "把快递送到我家里", "entity"),
    ("推荐一款适合拍照的手机", "推荐一款适合打游戏的手机", "entity"),
    ("一个苹果有多少卡路里？", "一个香蕉有多少卡路里？", "entity"),
    ("我的蓝牙耳机充不进电了", "我的智能手表充不进电了", "entity"),
    ("帮我给妈妈订一束生日花", "帮我给女朋友订一束生日花", "entity"),
    ("酒店多收了我停车费", "酒店多收了我早餐费", "entity"),
    ("解释一下 Java 里哈希表的原理", "解释一下 Java 里红黑树的原理", "entity"),
    ("帮我把音量调大一点", "帮我把音量调小一点", "antonym"),
    ("怎么把手机号绑定到这个账号？", "怎么把手机号从这个账号解绑？", "antonym"),
    ("张三欠李四两千块钱，怎么写借条？", "李四欠张三两千块钱，怎么写借条？", "swapped"),
    ("请勿在晚上十点后打电话给我", "请在晚上十点后打电话给我", "negation"),
]

NEAR_COPIES_EN: list[tuple[str, str, str]] = [
    # punctuation
    ("Where is my refund for order 88231?", "Where is my refund for order 88231", "punctuation"),
    ("Hi, I need to update my billing address.", "Hi I need to update my billing address!", "punctuation"),
    (
        "My package says delivered, but it's not here.",
        "My package says delivered but it's not here...",
        "punctuation",
    ),
    (
        "Can I change the size of my shoes after ordering?",
        "Can I change the size of my shoes after ordering??",
        "punctuation",
    ),
    (
        "Write a limerick about a cat who loves jazz.",
        "Write a limerick about a cat who loves jazz",
        "punctuation",
    ),
    (
        "The checkout page keeps spinning; I can't pay.",
        "The checkout page keeps spinning - I can't pay.",
        "punctuation",
    ),
    ("How do I delete my account permanently?", "How do I delete my account permanently ?", "punctuation"),
    # casing
    ("Is the store open on public holidays?", "is the store open on public holidays?", "casing"),
    ("My Kindle won't turn on after the update.", "my kindle won't turn on after the update.", "casing"),
    ("Give me three ideas for a birthday party.", "GIVE ME THREE IDEAS FOR A BIRTHDAY PARTY.", "casing"),
    ("What does HTTP status 404 mean?", "what does http status 404 mean?", "casing"),
    ("Reset my Netflix password please.", "Reset My Netflix Password Please.", "casing"),
    # spacing
    ("I was charged twice for my subscription.", "I was  charged twice for my   subscription.", "spacing"),
    ("Please update my e-mail address on file.", "Please update my email address on file.", "spacing"),
    ("My log in code never arrives by text.", "My login code never arrives by text.", "spacing"),
    ("Can I pay with Apple Pay at checkout?", "Can I pay with ApplePay at checkout?", "spacing"),
    ("The wifi router blinks red every night.", "The wi-fi router blinks red every night.", "spacing"),
    # typos
    ("I would like to cancel my gym membership.", "I would like to cancel my gym membreship.", "typo"),
    ("How long does shipping to Canada take?", "How long does shiping to Canada take?", "typo"),
    ("The screen of my tablet is cracked.", "The screen of my tablet is craked.", "typo"),
    ("Please send me the warranty information.", "Please send me the warrenty information.", "typo"),
    (
        "Why is my electricity bill so high this month?",
        "Why is my electricty bill so high this month?",
        "typo",
    ),
    (
        "Write a short story about a lighthouse keeper.",
        "Write a short stroy about a lighthouse keeper.",
        "typo",
    ),
    (
        "The delivery driver left my parcel in the rain.",
        "The delivery driver left my parcel in the rian.",
        "typo",
    ),
    ("Explain recursion to a beginner programmer.", "Explain recurssion to a beginner programmer.", "typo"),
    # filler words
    (
        "Cancel my dinner reservation for tonight.",
        "Please cancel my dinner reservation for tonight.",
        "filler",
    ),
    ("Can you check the status of my repair?", "Could you please check the status of my repair?", "filler"),
    ("I need a copy of my last invoice.", "Hi, I just need a copy of my last invoice, thanks.", "filler"),
    ("Track my package for me.", "Can you track my package for me please?", "filler"),
    (
        "What is the return window for electronics?",
        "Hello, what is the return window for electronics?",
        "filler",
    ),
    ("Suggest a name for my bakery.", "Please suggest a name for my bakery, thank you!", "filler"),
    (
        "Help me write a cover letter for a nursing job.",
        "Can you help me write a cover letter for a nursing job?",
        "filler",
    ),
    # full-width vs half-width
    ("Order ＃5521 has not shipped yet.", "Order #5521 has not shipped yet.", "width"),
    ("My coupon ＳＡＶＥ１０ is rejected.", "My coupon SAVE10 is rejected.", "width"),
    ("Why was I charged ＄49.99 twice?", "Why was I charged $49.99 twice?", "width"),
    ("Is the Ｍ size in stock？", "Is the M size in stock?", "width"),
    ("Ｒｅｓｅｔ my router to factory settings.", "Reset my router to factory settings.", "width"),
    # another order number, amount or date
    ("Where is my order 4471209?", "Where is my order 9930115?", "number"),
    (
        "I was overcharged by 12.50 dollars on my last bill.",
        "I was overcharged by 37.20 dollars on my last bill.",
        "number",
    ),
    ("Reschedule my appointment to March 3.", "Reschedule my appointment to April 17.", "number"),
    (
        "My flight on 2024-05-18 was cancelled, I want compensation.",
        "My flight on 2024-06-02 was cancelled, I want compensation.",
        "number",
    ),
    ("Ticket #55120: the printer keeps jamming.", "Ticket #61893: the printer keeps jamming.", "number"),
    (
        "Refund the 30 dollars you charged for shipping.",
        "Refund the 45 dollars you charged for shipping.",
        "number",
    ),
    ("Book a room for 2 nights starting Friday.", "Book a room for 3 nights starting Friday.", "number"),
    (
        "My tracking number YT2093311845 shows no update.",
        "My tracking number YT7741208836 shows no update.",
        "number",
    ),
    ("Split a bill of 84 dollars among 4 people.", "Split a bill of 120 dollars among 4 people.", "number"),
    (
        "Remind me to pay rent on the 1st of every month.",
        "Remind me to pay rent on the 5th of every month.",
        "number",
    ),
    (
        "My invoice from 12/03/2024 has the wrong company name.",
        "My invoice from 15/04/2024 has the wrong company name.",
        "number",
    ),
    (
        "The order placed on Monday still shows pending.",
        "The order placed on Thursday still shows pending.",
        "number",
    ),
    ("How do I turn off autoplay on YouTube?", "how do i turn off autoplay on youtube", "casing"),
    (
        "Is there a student discount on the annual plan?",
        "Is there a student discount on the anual plan?",
        "typo",
    ),
    ("Hey, can I pick up my order in store?", "Can I pick up my order in store?", "filler"),
]

NEAR_COPIES_ZH: list[tuple[str, str, str]] = [
    # punctuation
    ("我的退款什么时候到账？", "我的退款什么时候到账", "punctuation"),
    ("快递显示已签收，但我没收到。", "快递显示已签收但我没收到！", "punctuation"),
    ("这件衣服可以换大一码吗？", "这件衣服可以换大一码吗？？", "punctuation"),
    ("帮我写一首关于春天的诗。", "帮我写一首关于春天的诗", "punctuation"),
    ("为什么付款页面一直在转圈？", "为什么付款页面一直在转圈……", "punctuation"),
    ("怎么永久注销我的账号？", "怎么永久注销我的账号?", "punctuation"),
    # casing (Latin words inside Chinese text)
    ("我的 iPhone 充不进电", "我的 iphone 充不进电", "casing"),
    ("HTTP 404 是什么意思？", "http 404 是什么意思？", "casing"),
    ("Kindle 更新后开不了机", "KINDLE 更新后开不了机", "casing"),
    ("怎么在 Excel 里做数据透视表？", "怎么在 excel 里做数据透视表？", "casing"),
    # spacing
    ("我被扣了两次会员费", "我被扣了两次 会员费", "spacing"),
    ("用 Python 写一个爬虫", "用Python写一个爬虫", "spacing"),
    ("我的 微信 登录不上", "我的微信登录不上", "spacing"),
    ("App 闪退了怎么办", "App闪退了怎么办", "spacing"),
    # typos (homophones from the input method)
    ("我想取消健身房的会员", "我想取消健身房的会圆", "typo"),
    ("寄到加拿大的快递要多久？", "寄到加拿大的快第要多久？", "typo"),
    ("平板电脑的屏幕碎了", "平板电脑的平幕碎了", "typo"),
    ("请把保修信息发给我", "请把保休信息发给我", "typo"),
    ("这个月电费为什么这么高？", "这个月电费为什么这么搞？", "typo"),
    ("给我讲一个关于灯塔的故事", "给我讲一个关于灯塔的故是", "typo"),
    ("快递员把包裹放在雨里淋湿了", "快递员把包裹放在雨里林湿了", "typo"),
    ("给初学者解释一下递归", "给初学者解释一下地归", "typo"),
    ("我的账号被冻结了", "我的帐号被冻结了", "typo"),
    # filler words
    ("取消今晚的餐厅预订", "请帮我取消今晚的餐厅预订", "filler"),
    ("查一下我的维修进度", "麻烦查一下我的维修进度", "filler"),
    ("我要上个月的发票", "您好，我要上个月的发票，谢谢", "filler"),
    ("电子产品的退货期是多久？", "请问电子产品的退货期是多久？", "filler"),
    ("给我的面包店起个名字", "帮我给我的面包店起个名字吧", "filler"),
    ("帮我写一封护士岗位的求职信", "帮我写一封护士岗位的求职信呢", "filler"),
    ("物流信息怎么一直不更新", "物流信息怎么一直不更新啊", "filler"),
    # full-width vs half-width
    ("订单 ＃5521 还没发货", "订单 #5521 还没发货", "width"),
    ("优惠码 ＳＡＶＥ１０ 用不了", "优惠码 SAVE10 用不了", "width"),
    ("为什么扣了我 ４９．９ 元？", "为什么扣了我 49.9 元?", "width"),
    ("Ｍ 码还有货吗", "M 码还有货吗", "width"),
    # traditional vs simplified
    ("請幫我取消這個訂單", "请帮我取消这个订单", "traditional"),
    ("我的快遞到哪裡了？", "我的快递到哪里了？", "traditional"),
    ("怎麼修改登錄密碼？", "怎么修改登录密码？", "traditional"),
    ("這件衣服可以退貨嗎？", "这件衣服可以退货吗？", "traditional"),
    ("發票抬頭寫錯了，能重開嗎？", "发票抬头写错了，能重开吗？", "traditional"),
    ("幫我翻譯這段話成英文", "帮我翻译这段话成英文", "traditional"),
    # another order number, amount or date
    ("我的订单 4471209 到哪了？", "我的订单 9930115 到哪了？", "number"),
    ("上个月的账单多扣了我 12.5 元", "上个月的账单多扣了我 37.2 元", "number"),
    ("把我的预约改到 3 月 3 日", "把我的预约改到 4 月 17 日", "number"),
    ("我 2024-05-18 的航班取消了，要求赔偿", "我 2024-06-02 的航班取消了，要求赔偿", "number"),
    ("工单 55120：打印机一直卡纸", "工单 61893：打印机一直卡纸", "number"),
    ("退还多收的 30 元运费", "退还多收的 45 元运费", "number"),
    ("帮我订两晚的酒店，周五入住", "帮我订三晚的酒店，周五入住", "number"),
    ("运单号 YT2093311845 一直没有更新", "运单号 YT7741208836 一直没有更新", "number"),
    ("84 块钱四个人平摊每人多少？", "120 块钱四个人平摊每人多少？", "number"),
    ("每个月 1 号提醒我交房租", "每个月 5 号提醒我交房租", "number"),
    ("怎么关闭朋友圈广告？", "怎麼關閉朋友圈廣告？", "traditional"),
    ("我的订单号是 A20240518，能加急吗", "我的订单号是 A20240611，能加急吗", "number"),
]
