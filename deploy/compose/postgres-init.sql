-- One database per service (each service owns its data and its migrations).
CREATE DATABASE ingest;
CREATE DATABASE normalize;
CREATE DATABASE moderation;
CREATE DATABASE publishing;
CREATE DATABASE engagement;
CREATE DATABASE search;
