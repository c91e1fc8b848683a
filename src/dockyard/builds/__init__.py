"""Image builds from git: code sources, build rules, triggers from code hosts, the runner."""
