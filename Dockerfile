# vit in a container, for the README's Kubernetes Indexed Job (or any container runtime). Not built or run by
# this project's CI, which has no container engine: CI runs the build stage's commands (scripts/setup.sh, then
# scripts/docker/build-stage.sh) and checks the installed tree on the host.
#   docker build -t vit .
#   docker run --rm -v "$PWD/photos:/data:ro" vit classify /data
# Build stage: Debian 12 with the build dependencies (scripts/setup.sh installs them and builds, as on a host).
FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN scripts/setup.sh && scripts/docker/build-stage.sh /opt/vit build

# Runtime stage: the shared libraries vit links (runtime-packages.txt, found by the build stage) and nothing else;
# vit, its built-in models (DeiT-tiny ImageNet, the default, and fashion-vit) and the shard runner in /opt/vit.
FROM debian:12-slim
COPY --from=build /opt/vit/share/vit/runtime-packages.txt /tmp/runtime-packages.txt
RUN apt-get update \
    && xargs -a /tmp/runtime-packages.txt apt-get install -y --no-install-recommends \
    && rm -rf /var/lib/apt/lists/* /tmp/runtime-packages.txt \
    && useradd --system --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin vit
COPY --from=build /opt/vit /opt/vit
ENV PATH=/opt/vit/bin:$PATH VIT=/opt/vit/bin/vit
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["vit"]
CMD ["--help"]
