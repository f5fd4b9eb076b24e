#!/usr/bin/env bash
# Flash and static RAM of the C device SDK on a Cortex-M4 (arm-none-eabi-gcc -Os -mthumb -mcpu=cortex-m4,
# single-precision FPU, TF_CFG_REAL_FLOAT=1), per module and as linked for the firmware profiles of issue 6:
#   core:      event encoder + topic builder/parser + ring buffer                       (target <= 4 KiB)
#   with OTA:  core + trusted keys + manifest verifier + OTA state machine with its ota/status reports
#              (crypto excluded: the port's)                                            (target <= 8 KiB)
# and, beside them, the same with the TFLM output helpers (label / score / top-k), core + the birth/LWT
# state and telemetry encoders, and core + the flash-backed ring (tf_fring).
# The linked figures come from the map of device_sdk/c/bench/size_main.c (--gc-sections keeps what the profile
# calls): bytes of the SDK's own sections; the libc / libgcc helpers it pulls in (memcpy, strlen, ...) are
# shown apart, since the firmware links them anyway. The last line is JSON. A benchmark, not a test.
#
#   bench/sdk_size.sh            (needs gcc-arm-none-eabi and libnewlib-arm-none-eabi: make c-sdk-deps)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
SDK=device_sdk/c
CC=${CC_ARM:-arm-none-eabi-gcc}
SIZE=${SIZE_ARM:-arm-none-eabi-size}
command -v "$CC" >/dev/null || { echo "sdk_size: $CC is missing (Debian gcc-arm-none-eabi; make c-sdk-deps)" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
FLAGS=(-std=c99 -Os -mthumb -mcpu=cortex-m4 -mfloat-abi=hard -mfpu=fpv4-sp-d16 -ffunction-sections -fdata-sections
  -DTF_CFG_REAL_FLOAT=1 -Wall -Wextra -Werror -pedantic -I"$SDK/include" -I"$SDK/port" -I"$SDK/src")

printf '%-22s %8s %8s %8s   (object files: every function, before --gc-sections)\n' module text data bss
for src in "$SDK"/src/*.c; do
  obj="$out/$(basename "${src%.c}").o"
  "$CC" "${FLAGS[@]}" -c "$src" -o "$obj"
  "$SIZE" "$obj" | awk -v m="$(basename "$src")" 'NR == 2 { printf "%-22s %8d %8d %8d\n", m, $1, $2, $3 }'
done

# link a profile; print "sdk_flash sdk_ram helpers_flash" from the map file
link() {
  local name=$1
  shift
  "$CC" "${FLAGS[@]}" "$@" -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections \
    -Wl,-e,bench_entry -Wl,-Map,"$out/$name.map" "$SDK/bench/size_main.c" "$out"/tf_*.o -o "$out/$name.elf"
  python3 - "$out/$name.map" <<'PY'
import re, sys
sdk_flash = sdk_ram = helpers = 0
lines = open(sys.argv[1]).read().split("\n")
start = next(i for i, l in enumerate(lines) if l.startswith("Linker script and memory map"))
pending = None
for line in lines[start:]:
    m = re.match(r"^ (\.[\w.$]+)\s*$", line)
    if m:
        pending = m.group(1)
        continue
    m = re.match(r"^ (\.[\w.$]+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S+)", line)
    if not m:
        pending = None
        continue
    section = m.group(1) or pending
    pending = None
    if section is None or int(m.group(2), 16) == 0:
        continue
    size, obj = int(m.group(3), 16), m.group(4)
    ram = section.startswith((".bss", ".data"))
    flash = section.startswith((".text", ".rodata", ".data"))
    if re.search(r"/tf_\w+\.o$", obj):
        sdk_flash += size if flash else 0
        sdk_ram += size if ram else 0
    elif "size_main" not in obj and flash and ("libc" in obj or "libgcc" in obj):
        helpers += size
print(sdk_flash, sdk_ram, helpers)
PY
}
read -r core core_ram core_helpers < <(link core)
read -r tflm tflm_ram tflm_helpers < <(link tflm -DTF_SIZE_TFLM)
read -r state state_ram state_helpers < <(link state -DTF_SIZE_STATE)
read -r ota ota_ram ota_helpers < <(link ota -DTF_SIZE_OTA)
read -r otat otat_ram otat_helpers < <(link ota_tflm -DTF_SIZE_OTA -DTF_SIZE_TFLM)
read -r fring fring_ram fring_helpers < <(link fring -DTF_SIZE_FRING)
# host cost per event: callgrind instructions (stable on a noisy machine), 1000 encodes / decodes, gcc -O2
command -v valgrind >/dev/null || { echo "sdk_size: valgrind is missing (Debian valgrind)" >&2; exit 1; }
gcc -std=c99 -O2 -g -I"$SDK/include" "$SDK/bench/encode_bench.c" "$SDK"/src/tf_{cbor,wire,event,event_decode,err}.c \
  -o "$out/encode_bench"
(cd "$out" && valgrind --tool=callgrind --callgrind-out-file=cg.out ./encode_bench >/dev/null 2>&1)
per_event() { callgrind_annotate --inclusive=yes "$out/cg.out" | awk -v f="$1" '!done && $0 ~ ":"f" " { gsub(",", "", $1); print int($1 / 1000); done = 1 }'; }
enc_ir=$(per_event encode_all)
dec_ir=$(per_event decode_all)
ram=0
for r in "$core_ram" "$tflm_ram" "$state_ram" "$ota_ram" "$otat_ram" "$fring_ram"; do ram=$((r > ram ? r : ram)); done
echo
printf '%-62s %6s %6s %8s\n' "linked profile (SDK sections only)" flash ram "+libc"
row() { printf '%-62s %6d %6d %8d  %s\n' "$1" "$2" "$3" "$4" "$5"; }
verdict() { if [ "$1" -le "$2" ]; then echo "<= $2 ok"; else echo "> $2 MISSED"; fi; }
row "core: event encoder + topics + ring buffer" "$core" "$core_ram" "$core_helpers" "$(verdict "$core" 4096)"
row "core + TFLM output helpers" "$tflm" "$tflm_ram" "$tflm_helpers" ""
row "core + birth/LWT state and telemetry encoders" "$state" "$state_ram" "$state_helpers" ""
row "with OTA: core + keys + manifest verifier + state machine" "$ota" "$ota_ram" "$ota_helpers" "$(verdict "$ota" 8192)"
row "with OTA + TFLM output helpers" "$otat" "$otat_ram" "$otat_helpers" ""
row "core + flash-backed ring (flash hooks: the port's)" "$fring" "$fring_ram" "$fring_helpers" ""
echo "static RAM of the SDK: $ram bytes ($(verdict "$ram" 256)); every buffer is the caller's"
printf 'host (x86-64, gcc -O2), callgrind: %d instructions to encode the 42-byte design example, %d to decode and validate it\n' \
  "$enc_ir" "$dec_ir"
printf '{"bench": "sdk_size", "core_flash_bytes": %d, "core_with_tflm_flash_bytes": %d, "core_with_state_flash_bytes": %d, "with_ota_flash_bytes": %d, "with_ota_and_tflm_flash_bytes": %d, "core_with_flash_ring_flash_bytes": %d, "static_ram_bytes": %d, "libc_helpers_flash_bytes": %d, "encode_instructions_per_event": %d, "decode_instructions_per_event": %d, "target": "cortex-m4 -Os -mthumb"}\n' \
  "$core" "$tflm" "$state" "$ota" "$otat" "$fring" "$ram" "$otat_helpers" "$enc_ir" "$dec_ir"
