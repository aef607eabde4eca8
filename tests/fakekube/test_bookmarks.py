"""A bookmark promises that every event up to its resourceVersion has been sent: never one after it."""

from __future__ import annotations

import asyncio
import json

import aiohttp

from tests.fakekube import FakeKube


async def test_no_event_arrives_after_a_bookmark_past_it() -> None:
    async with FakeKube.running(bookmark_interval_s=0.0) as kube:
        loop = asyncio.get_running_loop()
        stop = loop.time() + 2.0
        count = 0

        def write() -> None:
            # From plain callbacks, so writes land between a wait's timeout and the handler resuming.
            nonlocal count
            count += 1
            kube.create(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{count}", "namespace": "d"}}
            )
            if loop.time() < stop:
                loop.call_later(0.0005 * (count % 3), write)

        url = (
            f"{kube.url}/api/v1/namespaces/d/configmaps?watch=true&allowWatchBookmarks=true&resourceVersion=0"
        )
        late = []
        bookmarked = 0
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            loop.call_soon(write)
            while loop.time() < stop + 0.5:
                try:
                    line = await asyncio.wait_for(response.content.readline(), 0.5)
                except TimeoutError:
                    break
                event = json.loads(line)
                rv = int(event["object"]["metadata"]["resourceVersion"])
                if event["type"] == "BOOKMARK":
                    bookmarked = max(bookmarked, rv)
                elif rv <= bookmarked:
                    late.append((rv, bookmarked))
        assert count > 100
        assert late == [], f"events sent after a bookmark past them: {late[:5]}"
