#!/usr/bin/env bash
# CLI tests of `vit eval` folder matching (issue 17, class 9): folders named after labels map by name; folders that
# name no label map by position with a warning that spells the mapping out; two folders on one class are refused
# naming both; an empty class folder is reported and not scored 0. Usage: test_eval.sh VIT_BINARY SOURCE_DIR
set -u
VIT=$1
SRC=$2
. "$(dirname "$0")/lib.sh"

FASHION=$SRC/models/fashion-vit
F=$SRC/samples/fashion
# tree NAME FOLDER=IMAGE...: an ImageFolder under $work/NAME.
tree() {
  local root=$work/$1 spec
  shift
  for spec in "$@"; do
    mkdir -p "$root/${spec%%=*}"
    [[ -n ${spec#*=} ]] && cp "$F/${spec#*=}" "$root/${spec%%=*}/"
  done
}

tree named Trouser=trouser.png Bag=bag.png T-shirt_top=tshirt_top.png
"$VIT" eval -m "$FASHION" --format json "$work/named" >"$work/o" 2>"$work/e"; rc=$?
check_eq "folders named after labels: exit 0, quiet, top-1 1" "$rc:$(cat "$work/e"):$(jq .top1 "$work/o")" "0::1"

tree collide Trouser=trouser.png zzz=bag.png
"$VIT" eval -m "$FASHION" "$work/collide" >"$work/o" 2>"$work/e"; rc=$?
check_eq "Trouser/ + zzz/ (position 1 = Trouser): refused, both named" "$rc:$(cat "$work/e")" \
  "1:vit: error: $work/collide: folders \"Trouser\" and \"zzz\" both map to class 1 \"Trouser\": \"Trouser\" by name, \"zzz\" by its position 1 (it names no model label) (rename the folders after the model's labels)"
check_eq "... nothing on stdout" "$(wc -c <"$work/o")" 0
tree collide2 Bag=bag.png a=bag.png b=bag.png c=bag.png d=bag.png e=bag.png f=bag.png g=bag.png h=bag.png
"$VIT" eval -m "$FASHION" "$work/collide2" >"$work/o" 2>"$work/e"; rc=$?
check_eq "Bag/ (8) + 'h' at position 8: refused" "$rc:$(grep -c 'folders "Bag" and "h" both map to class 8 "Bag"' "$work/e")" "1:1"

tree cifar airplane=bag.png automobile=trouser.png bird=dress.png
"$VIT" eval -m "$FASHION" --format json "$work/cifar" >"$work/o" 2>"$work/e"; rc=$?
check_eq "folders that name no label: mapped by position, the mapping on stderr" "$rc:$(cat "$work/e")" \
  "0:vit: warning: 3 of 3 class folders name no model label and are mapped by their position among the sorted folders (3 folders for a model of 10 classes: is this the model's dataset?): airplane -> 0 \"T-shirt/top\", automobile -> 1 \"Trouser\", bird -> 2 \"Pullover\""
check_eq "... per_class says so too" "$(jq -c '[.per_class[] | [.folder, .index]]' "$work/o")" '[["airplane",0],["automobile",1],["bird",2]]'
tree mixed Bag=bag.png Trouser=trouser.png zzz=dress.png
"$VIT" eval -m "$FASHION" "$work/mixed" >"$work/o" 2>"$work/e"; rc=$?
check_eq "named + one positional (no collision): warned with its mapping" "$rc:$(cat "$work/e")" \
  "0:vit: warning: 1 of 3 class folders name no model label and are mapped by their position among the sorted folders: zzz -> 2 \"Pullover\""

tree empty Trouser=trouser.png Bag= Dress=dress.png
"$VIT" eval -m "$FASHION" "$work/empty" >"$work/o" 2>"$work/e"; rc=$?
check_eq "an empty class folder: reported on stderr" "$rc:$(cat "$work/e")" "0:vit: warning: class folder \"Bag\" has no images: not scored"
check "... '-' in its accuracy column, not 0" grep -Eq '^ +Bag +0 +-$' "$work/o"
"$VIT" eval -m "$FASHION" --format json "$work/empty" >"$work/o" 2>/dev/null
check_eq "... null in json" "$(jq -c '.per_class[] | select(.folder == "Bag") | [.n, .accuracy]' "$work/o")" "[0,null]"
check_eq "... the others scored" "$(jq -c '[.n, .top1]' "$work/o")" "[2,1]"
mkdir -p "$work/noimg/Bag/sub"
"$VIT" eval -m "$FASHION" "$work/noimg" >"$work/o" 2>"$work/e"; rc=$?
check_eq "only an empty class folder: reported" "$rc:$(cat "$work/e")" "0:vit: warning: class folder \"Bag\" has no images: not scored"

finish
