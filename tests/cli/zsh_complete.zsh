# Drives an interactive zsh in a pseudo-terminal (zsh/zpty): loads the completion function in FPATH_DIR, types
# "vit WORDS<TAB>" and waits until the command line shows EXPECTED. The caller bounds the wait (timeout).
# Usage: zsh -f zsh_complete.zsh FPATH_DIR BIN_DIR WORDS EXPECTED
zmodload zsh/zpty || exit 2
fdir=$1 bdir=$2 words=$3 expected=$4
zpty z 'TERM=dumb PS1="%% " zsh -f -i'
zpty -w z "fpath=(${(q)fdir} \$fpath); path=(${(q)bdir} \$path); autoload -Uz compinit; compinit -u -D; setopt nobeep"
zpty -w -n z "vit $words"$'\t'
zpty -r -m z out "*${expected}*" && print -r -- "completed: vit $words -> ...${expected}"
rc=$?
zpty -d z
exit $rc
