"""What every page of the browser app shares: the frame a page starts with, links into Review, the export
settings and preview, and the Review filter's sync with the URL. Only this package and `pages/` import Streamlit."""

from .frame import Page, fail, flash, has_flash, page_frame, show_flash, stop_on_error
from .links import REVIEW, chart_to_review, open_review, review_link

__all__ = [
    "REVIEW",
    "Page",
    "chart_to_review",
    "fail",
    "flash",
    "has_flash",
    "open_review",
    "page_frame",
    "review_link",
    "show_flash",
    "stop_on_error",
]
