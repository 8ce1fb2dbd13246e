"""View models: what each page shows, built from the APIs' JSON (pure, no I/O).

The templates only lay these out. Links are the website's own paths; every value that came
from an API is plain text the templates escape, except the HTML this module marks as markup
(article bodies from publishing, answers from the desk, search highlights), each cleaned here
or sanitised at its source as documented on it.

One module per page; the names are re-exported here for the routes and templates.
"""

from portal_web.views.article import ArticleView as ArticleView
from portal_web.views.article import article_view as article_view
from portal_web.views.article import breadcrumb_for as breadcrumb_for
from portal_web.views.article import json_ld as json_ld
from portal_web.views.common import ARTICLE_PREFIX as ARTICLE_PREFIX
from portal_web.views.common import ENGAGEMENT_KIND as ENGAGEMENT_KIND
from portal_web.views.common import ENGAGEMENT_PATHS as ENGAGEMENT_PATHS
from portal_web.views.common import LEADER_KIND as LEADER_KIND
from portal_web.views.common import MEDIA_PREFIX as MEDIA_PREFIX
from portal_web.views.common import SUBSITE_KIND as SUBSITE_KIND
from portal_web.views.common import SUBSITE_KIND_LABELS as SUBSITE_KIND_LABELS
from portal_web.views.common import Link as Link
from portal_web.views.common import Picture as Picture
from portal_web.views.common import Teaser as Teaser
from portal_web.views.common import article_href as article_href
from portal_web.views.common import media_url as media_url
from portal_web.views.common import picture as picture
from portal_web.views.common import plain_paragraphs as plain_paragraphs
from portal_web.views.common import safe_answer as safe_answer
from portal_web.views.common import safe_highlight as safe_highlight
from portal_web.views.engagement import PHASE_LABELS as PHASE_LABELS
from portal_web.views.engagement import AgencyTimes as AgencyTimes
from portal_web.views.engagement import DialogueView as DialogueView
from portal_web.views.engagement import DocumentView as DocumentView
from portal_web.views.engagement import EntryView as EntryView
from portal_web.views.engagement import PostView as PostView
from portal_web.views.engagement import QuestionView as QuestionView
from portal_web.views.engagement import agency_times as agency_times
from portal_web.views.engagement import dialogue_order as dialogue_order
from portal_web.views.engagement import dialogue_view as dialogue_view
from portal_web.views.engagement import document_view as document_view
from portal_web.views.engagement import entry_view as entry_view
from portal_web.views.engagement import post_view as post_view
from portal_web.views.engagement import question_view as question_view
from portal_web.views.home import HEADLINES as HEADLINES
from portal_web.views.home import BlockView as BlockView
from portal_web.views.home import EngagementBlock as EngagementBlock
from portal_web.views.home import HomeView as HomeView
from portal_web.views.home import LeaderView as LeaderView
from portal_web.views.home import home_view as home_view
from portal_web.views.paging import CursorPager as CursorPager
from portal_web.views.paging import PageLink as PageLink
from portal_web.views.paging import cursor_pager as cursor_pager
from portal_web.views.paging import page_links as page_links
from portal_web.views.paging import query_string as query_string
from portal_web.views.search import SEARCH_PAGE_SIZE as SEARCH_PAGE_SIZE
from portal_web.views.search import Facet as Facet
from portal_web.views.search import Hit as Hit
from portal_web.views.search import SearchView as SearchView
from portal_web.views.search import search_view as search_view
from portal_web.views.site import SectionInfo as SectionInfo
from portal_web.views.site import Site as Site
from portal_web.views.site import SubsiteInfo as SubsiteInfo
from portal_web.views.status import KIND_LABELS as KIND_LABELS
from portal_web.views.status import StatusView as StatusView
from portal_web.views.status import StepView as StepView
from portal_web.views.status import public_href as public_href
from portal_web.views.status import status_view as status_view
