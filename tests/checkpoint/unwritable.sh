#!/usr/bin/env bash
# A checkpoint folder that cannot be written — read-only (a read-only bind mount:
# root ignores file modes) and full (a tmpfs just larger than what is there) — must
# fail the run with a one-line error naming the problem, and leave the previous
# checkpoint intact and loadable. Needs mount(8) privileges (root in CI).
#
#   unwritable.sh <bora-train> <work dir> [bora-train args...]
source "$(dirname "$0")/common.sh"
TRAIN=$1 work=$2
shift 2
rm -rf "$work"; mkdir -p "$work"
run="$work/run" ck="$work/run/checkpoints"
mounted=""
cleanup() { [ -n "$mounted" ] && umount "$mounted" 2>/dev/null; true; }
trap cleanup EXIT
# Checkpoints at steps 4; the injected failure in step 6 ends the first job.
BORA_TEST_FAIL_AT=0:6 "$TRAIN" "$@" --checkpoint_every 4 --run_dir "$run" >"$work/first.log" 2>&1
[ "$(complete_steps "$run")" = "4 " ] || { cat "$work/first.log"; fail "expected the checkpoint of step 4"; }
before=$(cd "$ck/step_00000004" && find . -type f -exec sha256sum {} + | sort)

label_args=("$@")

mount --bind "$ck" "$ck" && mounted=$ck && mount -o remount,ro,bind "$ck" ||
  fail "cannot make a read-only bind mount (the test needs root with mount privileges)"
"$TRAIN" "${label_args[@]}" --checkpoint_every 4 --run_dir "$run" --resume auto >"$work/readonly.log" 2>&1; rc=$?
umount "$ck"; mounted=""
tail -n 1 "$work/readonly.log"
[ "$rc" -eq 3 ] || { cat "$work/readonly.log"; fail "read-only: exit code $rc, expected 3 (IoError)"; }
grep -q "resuming from .*step_00000004" "$work/readonly.log" || fail "read-only: did not resume from step 4"
grep -Eq "error: .*checkpoints.*Read-only file system" "$work/readonly.log" || fail "read-only: unclear error"

used_kb=$(du -sk "$ck" | cut -f1)
cp -a "$ck" "$work/ck.copy"
mount -t tmpfs -o size=$((used_kb + 24))k tmpfs "$ck" && mounted=$ck ||
  fail "cannot mount a tmpfs (the test needs root with mount privileges)"
cp -a "$work/ck.copy/." "$ck/"
"$TRAIN" "${label_args[@]}" --checkpoint_every 4 --run_dir "$run" --resume auto >"$work/full.log" 2>&1; rc=$?
full_left=$(cd "$ck/step_00000004" && find . -type f -exec sha256sum {} + | sort)
umount "$ck"; mounted=""
tail -n 1 "$work/full.log"
[ "$rc" -eq 3 ] || { cat "$work/full.log"; fail "full disk: exit code $rc, expected 3 (IoError)"; }
grep -Eq "error: .*No space left on device" "$work/full.log" || fail "full disk: unclear error"
[ "$full_left" = "$before" ] || fail "full disk: the checkpoint of step 4 changed"

after=$(cd "$ck/step_00000004" && find . -type f -exec sha256sum {} + | sort)
[ "$after" = "$before" ] || fail "the checkpoint of step 4 changed"
"$TRAIN" "${label_args[@]}" --checkpoint_every 4 --run_dir "$run" --resume auto >"$work/last.log" 2>&1 ||
  { cat "$work/last.log"; fail "resuming after the failures did not work"; }
grep -q "resuming from .*step_00000004" "$work/last.log" || fail "did not resume from step 4"
echo "OK: read-only and full checkpoint folders fail with IoError; step 4 stays intact and loadable"
