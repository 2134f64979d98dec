"""Playground: chat with the base model or a run's adapter, two side by side if you like, and flag a bad answer
with the right one: it becomes a badcase in Review, the model's answer kept beside the fix."""

import streamlit as st

import ui
from workbench import playground, review
from workbench.errors import WorkbenchError
from workbench.markup import escape_markdown
from workbench.review import ReviewFilter
from workbench.store import Store

HELP = playground.Sampling.help_texts()
DEFAULTS = playground.Sampling()
RANGES = playground.Sampling.ranges()

store, author = ui.page_frame(
    "Playground",
    "Ask the model; when an answer is wrong, write the right one and save it as a badcase for the next run.",
)
state = st.session_state


@st.cache_resource(show_spinner="Loading the model (once per server)…", max_entries=3)
def chat_model(root: str, choice: str, base_model: str | None) -> playground.ChatModel:
    return playground.load_chat_model(Store.open(root), choice, base_model=base_model or None)


with ui.stop_on_error():
    choices = playground.model_choices(store)
    categories = [c for c in review.filter_choices(store)["categories"] if c]
root = str(store.root)
if state.pop("pg_flagged", False):  # a badcase was just saved (the frame showed its message): where it went
    ui.review_link("Open it in Review", ReviewFilter(tags=("playground",)), icon=":material/rate_review:")

c1, c2, c3 = st.columns([2, 1, 2])
first = c1.selectbox(
    "Model",
    choices,
    key="pg_model",
    help="The base model, a finished run's adapter on it, or a registered model (`workbench models add`).",
)
both = c2.toggle("Compare two", key="pg_both", help="Both models answer the same question side by side.")
second = (
    c3.selectbox("Second model", choices, index=min(1, len(choices) - 1), key="pg_model2", disabled=not both)
    if both
    else None
)
with st.expander("System prompt and sampling"):
    system = st.text_area(
        "System prompt",
        key="pg_system",
        height=80,
        placeholder="e.g. You are the support assistant of a food-delivery service. 你是外卖平台的客服。",
    )
    s1, s2, s3, s4 = st.columns(4)
    sampling = playground.Sampling(
        max_new_tokens=s1.number_input(
            "max_new_tokens",
            *RANGES["max_new_tokens"],
            DEFAULTS.max_new_tokens,
            help=HELP["max_new_tokens"],
            key="pg_max",
        ),
        temperature=s2.slider(
            "temperature",
            *RANGES["temperature"],
            DEFAULTS.temperature,
            0.05,
            help=HELP["temperature"],
            key="pg_temp",
        ),
        top_p=s3.slider("top_p", *RANGES["top_p"], DEFAULTS.top_p, 0.05, help=HELP["top_p"], key="pg_top_p"),
    )
    base_model = s4.text_input(
        "Base model folder",
        key="pg_base",
        placeholder="embedded SmolLM2",
        help="A local model folder instead of the embedded model (for 'base').",
    )
models = [first] + ([second] if both and second else [])

# --- the conversation --------------------------------------------------------------------------------------------
turns: list[dict] = state.setdefault("pg_turns", [])  # {question, messages, answers: {model: text}}
question = st.chat_input("Ask the model (English or 中文)…", key="pg_question")
if question:
    with ui.stop_on_error():
        messages = playground.chat_messages(system or "", [], question)
    answers = {}
    cols = st.columns(len(models))
    for col, name in zip(cols, models, strict=True):
        with col:
            st.caption(escape_markdown(name))
            with ui.stop_on_error():
                model = chat_model(root, name, base_model if name == "base" else None)
                # the answer is the model's text, never markdown (an image in it would be fetched): shown
                # growing in a text element, as it is shown once the turn is kept
                shown, answer = st.empty(), ""
                for piece in playground.stream_answer(model, messages, sampling):
                    answer += piece
                    shown.text(answer)
                answers[name] = answer
    turns.append(
        {
            "question": question,
            "messages": messages,
            "answers": answers,
            "settings": {"base_model": base_model or None, "sampling": sampling},
        }
    )
    st.rerun()

if not turns:
    st.info(
        "Ask a question below. The first answer loads the model, which takes a little while on a CPU; "
        "then answers stream in."
    )
for n, turn in reversed(list(enumerate(turns))):
    with st.container(border=True):
        st.markdown("**You**")
        st.text(turn["question"])
        cols = st.columns(len(turn["answers"]))
        for col, (name, answer) in zip(cols, turn["answers"].items(), strict=True):
            with col:
                st.markdown(f"**{escape_markdown(name)}**")
                st.text(answer or "(empty answer)")
                with st.popover("Flag this answer", icon=":material/flag:"):
                    with st.form(key=f"pg_flag_{n}_{name}"):
                        fix = st.text_area("The right answer", key=f"pg_fix_{n}_{name}")
                        category = st.selectbox(
                            "Category",
                            [*categories, "(new)"],
                            key=f"pg_cat_{n}_{name}",
                            index=None,
                            placeholder="pick a category",
                        )
                        new = st.text_input(
                            "New category", key=f"pg_new_{n}_{name}", help="Used when the category is (new)."
                        )
                        if st.form_submit_button("Save 1 badcase"):
                            try:
                                model = chat_model(
                                    root, name, turn["settings"]["base_model"] if name == "base" else None
                                )
                                record_id = playground.flag_answer(
                                    store,
                                    turn["messages"],
                                    answer,
                                    fix,
                                    category=new if category == "(new)" else category,
                                    model=name,
                                    base_model=model.base_model,
                                    adapter=model.adapter,
                                    sampling=turn["settings"]["sampling"],
                                    author=author,
                                )
                            except WorkbenchError as exc:
                                st.error(escape_markdown(exc))
                            else:
                                ui.flash(
                                    "success",
                                    f"Saved as badcase record {record_id}, with the model's answer kept as "
                                    "the bad output.",
                                )
                                state.pg_flagged = True
                                st.rerun()
if turns and st.button("Clear the conversation", key="pg_clear"):
    state.pg_turns = []
    st.rerun()
