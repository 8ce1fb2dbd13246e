# The portal's edge cache (Varnish 7, vmod xkey from varnish-modules).
#
# The same file runs locally (the `portal` launcher starts varnishd with it) and in
# docker-compose (the official varnish image). What differs between the two, the origins'
# addresses and who may purge, is in backends.vcl next to it: the launcher renders it from
# backends.vcl.template; compose mounts deploy/edge/compose/backends.vcl.
#
# Routing: /v1/, /rss/, /sitemap.xml, /sitemaps/ and /media/ go to publishing; everything else
# to the public website (the `website` backend, which is publishing itself when the stack runs
# no website).
#
# Caching follows the origin's Cache-Control: only `public` responses are kept, for s-maxage
# (else max-age); stale-while-revalidate lets one stale copy go out while a fresh one is fetched;
# stale-if-error keeps objects so that readers are still served while the origin is down or
# failing. Anything private never enters the cache: requests with a cookie or credentials,
# responses that are private/no-store/no-cache or set a cookie.
#
# Invalidation: origins label responses with `Surrogate-Key` (space-separated keys, see the
# README); they become xkey tags here and are never shown to clients. `PURGE` with an `xkey`
# header invalidates every object carrying one of the keys: `xkey-purge: soft` marks them stale
# (still served in the stale-if-error window), anything else removes them. Purges are taken
# only from the `purgers` ACL with the bearer token in varnishd's EDGE_PURGE_TOKEN environment.

vcl 4.1;

import std;
import xkey;

include "backends.vcl";

sub vcl_recv {
    if (req.restarts == 0) {
        # The X-Edge-* headers are this VCL's own notes between restarts, never a client's.
        unset req.http.X-Edge-Stale;
        unset req.http.X-Edge-Refresh;
        unset req.http.X-Edge-Serve-Stale;
    }
    if (req.method == "PURGE") {
        call portal_purge;
    }
    if (req.url == "/_edge/healthz") {
        return (synth(200, "OK"));
    }
    # Operator endpoints of the origins are not part of the public site.
    if (req.url ~ "^/(admin/|metrics|healthz|readyz)") {
        return (synth(404, "Not Found"));
    }

    if (req.url ~ "^/(v1/|rss/|sitemaps/|media/)" || req.url ~ "^/sitemap\.xml(\?|$)") {
        set req.backend_hint = publishing;
    } else {
        set req.backend_hint = website;
    }
    # Equal queries in another order are one object.
    set req.url = std.querysort(req.url);

    if (req.http.X-Edge-Stale) {
        # Restarted because the origin failed: a stale copy of any age the origin allowed
        # (stale-if-error) is better than an error.
        unset req.http.X-Edge-Stale;
        set req.http.X-Edge-Serve-Stale = "1";
        set req.grace = 1y;  # the object's own grace (stale-if-error) is the limit
    } elseif (req.http.X-Edge-Refresh) {
        # Restarted from vcl_hit: the copy is older than stale-while-revalidate allows.
        unset req.http.X-Edge-Refresh;
        set req.grace = 0s;
    } elseif (!std.healthy(req.backend_hint)) {
        set req.http.X-Edge-Serve-Stale = "1";
    }

    if (req.method != "GET" && req.method != "HEAD") {
        set req.http.X-Edge-Serve-Stale = "1";  # no second try for stale copies (vcl_synth)
        return (pass);
    }
    # Personalised: never answered from the cache, never stored.
    if (req.http.Authorization || req.http.Cookie) {
        set req.http.X-Edge-Serve-Stale = "1";
        return (pass);
    }
    return (hash);
}

sub portal_purge {
    if (client.ip !~ purgers || std.getenv("EDGE_PURGE_TOKEN") == ""
        || req.http.Authorization != "Bearer " + std.getenv("EDGE_PURGE_TOKEN")) {
        return (synth(403, "Forbidden"));
    }
    if (!req.http.xkey) {
        return (synth(400, "Surrogate keys expected in the xkey header"));
    }
    if (req.http.xkey-purge == "soft") {
        set req.http.X-Edge-Purged = xkey.softpurge(req.http.xkey);
    } else {
        set req.http.X-Edge-Purged = xkey.purge(req.http.xkey);
    }
    return (synth(200, "Purged " + req.http.X-Edge-Purged));
}

sub vcl_hash {
    # One site: the Host header (127.0.0.1:port, localhost, a public name) does not change a
    # response, and must not split the cache.
    hash_data(req.url);
    return (lookup);
}

sub vcl_hit {
    if (obj.ttl < 0s && !req.http.X-Edge-Serve-Stale
        && obj.ttl + std.duration(obj.http.X-Edge-SWR + "s", 0s) < 0s) {
        # Past stale-while-revalidate and the origin is up: fetch a fresh copy for this reader.
        set req.http.X-Edge-Refresh = "1";
        return (restart);
    }
    return (deliver);
}

sub vcl_backend_fetch {
    unset bereq.http.X-Edge-Refresh;
    return (fetch);
}

sub vcl_backend_response {
    if (beresp.http.Surrogate-Key) {
        set beresp.http.xkey = beresp.http.Surrogate-Key;
        unset beresp.http.Surrogate-Key;
    }
    if (beresp.status >= 500) {
        if (bereq.is_bgfetch || !bereq.http.X-Edge-Serve-Stale) {
            # Inserting the error would end the stale copy of the page, if there is one:
            # drop it, and the reader's request looks for that copy (vcl_synth).
            return (abandon);
        }
        set beresp.uncacheable = true;
        set beresp.ttl = 0s;
        return (deliver);
    }
    if (bereq.uncacheable) {
        return (deliver);
    }
    if (beresp.http.Set-Cookie
        || beresp.http.Cache-Control ~ "(?i)(private|no-store|no-cache)"
        || beresp.http.Cache-Control !~ "(?i)public"
        || beresp.http.Vary == "*") {
        # Only what the origin declares public is shared between readers. A private page is
        # remembered as such for a while (its readers are not queued behind each other); an
        # error (a 429, a 503) is not: the next reader's answer may well be cacheable.
        set beresp.uncacheable = true;
        if (beresp.status >= 400) {
            set beresp.ttl = 0s;
        } else {
            set beresp.ttl = 30s;
        }
        return (deliver);
    }
    # beresp.ttl comes from s-maxage (else max-age), beresp.grace from stale-while-revalidate.
    set beresp.http.X-Edge-SWR = beresp.grace;
    if (beresp.http.Cache-Control ~ "(?i)stale-if-error=[0-9]+") {
        set beresp.grace = std.duration(
            regsub(beresp.http.Cache-Control, "(?i)^.*stale-if-error=([0-9]+).*$", "\1s"),
            beresp.grace);
    }
    if (beresp.grace < std.duration(beresp.http.X-Edge-SWR + "s", 0s)) {
        set beresp.grace = std.duration(beresp.http.X-Edge-SWR + "s", 0s);
    }
    # Past ttl and grace, a copy still saves the body: the origin can answer 304.
    if (beresp.http.ETag || beresp.http.Last-Modified) {
        set beresp.keep = 1h;
    }
    return (deliver);
}

sub vcl_backend_error {
    if (bereq.is_bgfetch || !bereq.http.X-Edge-Serve-Stale) {
        return (abandon);  # as for a 5xx answer (vcl_backend_response)
    }
    return (deliver);
}

sub vcl_deliver {
    if (obj.uncacheable) {
        set resp.http.X-Cache = "PASS";
    } elseif (obj.hits > 0) {
        set resp.http.X-Cache = "HIT";
    } else {
        set resp.http.X-Cache = "MISS";
    }
    unset resp.http.xkey;
    unset resp.http.X-Edge-SWR;
    unset resp.http.Via;
    unset resp.http.X-Varnish;
    return (deliver);
}

sub vcl_synth {
    if (resp.status == 503 && req.restarts < 2 && !req.http.X-Edge-Serve-Stale) {
        # The origin failed (its answer was dropped): look again, this time for a stale copy
        # (stale-if-error); without one, the origin is asked once more and its answer shown.
        set req.http.X-Edge-Stale = "1";
        return (restart);
    }
    unset resp.http.Retry-After;
    set resp.http.Content-Type = "text/plain; charset=utf-8";
    set resp.http.Cache-Control = "no-store";
    if (resp.status == 503) {
        set resp.http.Retry-After = "5";
    }
    set resp.body = resp.reason + {"
"};
    return (deliver);
}
