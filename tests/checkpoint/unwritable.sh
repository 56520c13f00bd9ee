#!/usr/bin/env bash
# A checkpoint folder that cannot be written — read-only (a read-only bind mount:
# root ignores file modes) and full (a tmpfs just larger than what is there) — must
# fail the run with a one-line error naming the problem, and leave the previous
# checkpoint intact and loadable. The error line names the host (and, under
# mpirun, the rank) that failed: "bora-train: rank 0 on host n07: error: cannot
# create folder '.../checkpoints/.step_00000008.tmp': Read-only file system" (with
# $MPIEXEC set, a 2-rank run is checked too). Needs mount(8) privileges (root in CI).
#
#   [MPIEXEC=mpirun] unwritable.sh <bora-train> <work dir> [bora-train args...]
source "$(dirname "$0")/common.sh"
TRAIN=$1 work=$2
shift 2
host=$(hostname)
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
grep -Eq "^bora-train: host $host: error: .*Read-only file system" "$work/readonly.log" ||
  fail "read-only: the error line does not name host $host"
[ -z "$(complete_steps "$run" | tr -d '4 ')" ] || fail "read-only: a checkpoint other than step 4 is marked complete"

if [ -n "${MPIEXEC:-}" ]; then
  # The same on 2 ranks: the rank that fails names itself and its host.
  PIDS_DIR=$work
  mount --bind "$ck" "$ck" && mounted=$ck && mount -o remount,ro,bind "$ck" || fail "cannot remount read-only"
  mpi 2 "${label_args[@]}" --checkpoint_every 4 --run_dir "$run" --resume auto >"$work/readonly_np2.log" 2>&1; rc=$?
  umount "$ck"; mounted=""
  grep "error:" "$work/readonly_np2.log" | head -n 2
  [ "$rc" -ne 0 ] || fail "read-only, 2 ranks: exit code 0"
  grep -Eq "bora-train: rank [01] on host $host: error: .*checkpoints.*Read-only file system" "$work/readonly_np2.log" ||
    { cat "$work/readonly_np2.log"; fail "read-only, 2 ranks: the error line does not name the rank and host $host"; }
  [ "$(complete_steps "$run")" = "4 " ] || fail "read-only, 2 ranks: complete checkpoints $(complete_steps "$run"), expected step 4 only"
fi

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
grep -Eq "^bora-train: host $host: error: " "$work/full.log" || fail "full disk: the error line does not name host $host"
[ "$full_left" = "$before" ] || fail "full disk: the checkpoint of step 4 changed"

after=$(cd "$ck/step_00000004" && find . -type f -exec sha256sum {} + | sort)
[ "$after" = "$before" ] || fail "the checkpoint of step 4 changed"
"$TRAIN" "${label_args[@]}" --checkpoint_every 4 --run_dir "$run" --resume auto >"$work/last.log" 2>&1 ||
  { cat "$work/last.log"; fail "resuming after the failures did not work"; }
grep -q "resuming from .*step_00000004" "$work/last.log" || fail "did not resume from step 4"
echo "OK: read-only and full checkpoint folders fail with IoError naming host $host; step 4 stays intact and loadable"
