"""A fake YouTube Data API v3 on a loopback port: the documented request parameters and
response shapes of channels.list, playlistItems.list, videos.list and commentThreads.list,
with deterministic channels, videos and comments. It stands in for the external service only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

API_KEY = "fake-youtube-key"
NOW = datetime.now(UTC).replace(microsecond=0)


def _error(status: int, reason: str, message: str) -> JSONResponse:
    body = {
        "error": {
            "code": status,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
        }
    }
    return JSONResponse(body, status_code=status)


@dataclass
class FakeYouTube:
    channels: dict[str, int]  # handle -> number of videos
    page_size: int = 5
    comments_per_video: int = 3
    delay: float = 0.0  # seconds per request, to let a test kill a worker mid-run
    valid_keys: set[str] = field(default_factory=lambda: {API_KEY})
    calls: list[str] = field(default_factory=list)

    def channel_id(self, handle: str) -> str:
        return ("UC" + handle.upper() + "X" * 22)[:24]

    def video(self, handle: str, n: int) -> dict[str, Any]:
        published = (NOW - timedelta(hours=n)).isoformat().replace("+00:00", "Z")
        return {
            "kind": "youtube#video",
            "etag": f"e{n}",
            "id": f"{handle}-v{n:04d}",
            "snippet": {
                "publishedAt": published,
                "channelId": self.channel_id(handle),
                "title": f"Video {n} of {handle}",
                "description": f"episode {n} #vlog #{handle} with @guest",
                "channelTitle": handle,
            },
            "statistics": {
                "viewCount": str(1000 * n),
                "likeCount": str(10 * n),
                "favoriteCount": "0",
                "commentCount": str(self.comments_per_video),
            },
        }

    def _find(self, request: Request) -> str | None:
        q = request.query_params
        if "forHandle" in q:
            handle = q["forHandle"].lstrip("@").lower()
            return handle if handle in self.channels else None
        for handle in self.channels:
            if self.channel_id(handle) == q.get("id"):
                return handle
        return None

    async def _gate(self, request: Request) -> JSONResponse | None:
        self.calls.append(request.url.path.rsplit("/", 1)[-1])
        if self.delay:
            await asyncio.sleep(self.delay)
        if request.query_params.get("key") not in self.valid_keys:
            return _error(400, "keyInvalid", "API key not valid. Please pass a valid API key.")
        return None

    async def channels_list(self, request: Request) -> JSONResponse:
        if (refused := await self._gate(request)) is not None:
            return refused
        handle = self._find(request)
        items = []
        if handle is not None:
            cid = self.channel_id(handle)
            items.append(
                {
                    "kind": "youtube#channel",
                    "etag": "c",
                    "id": cid,
                    "snippet": {"title": handle.title(), "customUrl": f"@{handle}"},
                    "contentDetails": {"relatedPlaylists": {"uploads": "UU" + cid[2:]}},
                    "statistics": {
                        "viewCount": "1000000",
                        "subscriberCount": str(50_000 + self.channels[handle]),
                        "hiddenSubscriberCount": False,
                        "videoCount": str(self.channels[handle]),
                    },
                }
            )
        return JSONResponse(
            {
                "kind": "youtube#channelListResponse",
                "etag": "l",
                "pageInfo": {"totalResults": len(items), "resultsPerPage": 5},
                "items": items,
            }
        )

    async def playlist_items(self, request: Request) -> JSONResponse:
        if (refused := await self._gate(request)) is not None:
            return refused
        playlist = request.query_params["playlistId"]
        handle = next(h for h in self.channels if "UU" + self.channel_id(h)[2:] == playlist)
        start = int(request.query_params.get("pageToken", "0") or 0)
        size = min(int(request.query_params.get("maxResults", "5")), self.page_size)
        total = self.channels[handle]
        items = [
            {
                "kind": "youtube#playlistItem",
                "etag": f"p{n}",
                "id": f"item-{handle}-{n}",
                "contentDetails": {
                    "videoId": f"{handle}-v{n:04d}",
                    "videoPublishedAt": self.video(handle, n)["snippet"]["publishedAt"],
                },
            }
            for n in range(start, min(start + size, total))
        ]
        body: dict[str, Any] = {
            "kind": "youtube#playlistItemListResponse",
            "etag": "pl",
            "pageInfo": {"totalResults": total, "resultsPerPage": size},
            "items": items,
        }
        if start + size < total:
            body["nextPageToken"] = str(start + size)
        return JSONResponse(body)

    async def videos(self, request: Request) -> JSONResponse:
        if (refused := await self._gate(request)) is not None:
            return refused
        items = []
        for vid in request.query_params["id"].split(","):
            handle, n = vid.rsplit("-v", 1)
            items.append(self.video(handle, int(n)))
        return JSONResponse(
            {
                "kind": "youtube#videoListResponse",
                "etag": "v",
                "pageInfo": {"totalResults": len(items), "resultsPerPage": len(items)},
                "items": items,
            }
        )

    async def comment_threads(self, request: Request) -> JSONResponse:
        if (refused := await self._gate(request)) is not None:
            return refused
        vid = request.query_params["videoId"]
        items = []
        for c in range(self.comments_per_video):
            snippet = {
                "videoId": vid,
                "textDisplay": f"comment {c} on {vid}",
                "textOriginal": f"comment {c} on {vid}",
                "authorDisplayName": f"@fan{c}",
                "likeCount": c,
                "publishedAt": NOW.isoformat().replace("+00:00", "Z"),
                "updatedAt": NOW.isoformat().replace("+00:00", "Z"),
            }
            items.append(
                {
                    "kind": "youtube#commentThread",
                    "etag": f"t{c}",
                    "id": f"{vid}-c{c}",
                    "snippet": {
                        "videoId": vid,
                        "topLevelComment": {
                            "kind": "youtube#comment",
                            "etag": f"k{c}",
                            "id": f"{vid}-c{c}",
                            "snippet": snippet,
                        },
                        "canReply": True,
                        "totalReplyCount": 0,
                        "isPublic": True,
                    },
                }
            )
        return JSONResponse(
            {
                "kind": "youtube#commentThreadListResponse",
                "etag": "ct",
                "pageInfo": {"totalResults": len(items), "resultsPerPage": 100},
                "items": items,
            }
        )

    def app(self) -> Starlette:
        base = "/youtube/v3"
        return Starlette(
            routes=[
                Route(f"{base}/channels", self.channels_list),
                Route(f"{base}/playlistItems", self.playlist_items),
                Route(f"{base}/videos", self.videos),
                Route(f"{base}/commentThreads", self.comment_threads),
            ]
        )
