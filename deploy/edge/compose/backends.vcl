# The origins behind the edge and who may purge it; included by portal.vcl.
# Rendered by the local launcher (portal_launcher.components.varnish) into the stack's data
# folder; docker-compose mounts its own rendering, deploy/edge/compose/backends.vcl.
# ${...} names are filled in from the launcher's settings.

probe origin_health {
    .url = "/healthz";
    .interval = 1s;
    .timeout = 1s;
    .window = 3;
    .threshold = 2;
}

# Publishing: the public read API, feeds, sitemaps and /media/.
backend publishing {
    .host = "publishing";
    .port = "8004";
    .probe = origin_health;
    .connect_timeout = 1s;
    .first_byte_timeout = 10s;
    .between_bytes_timeout = 10s;
}

# The public website (every other path); publishing itself when the stack runs no website.
backend website {
    .host = "web";
    .port = "8007";
    .probe = origin_health;
    .connect_timeout = 1s;
    .first_byte_timeout = 10s;
    .between_bytes_timeout = 10s;
}

# Addresses allowed to send PURGE (with the bearer token as well).
acl purgers {
    "172.28.56.0"/24;
}
