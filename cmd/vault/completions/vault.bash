# bash completion for vault. Load it in ~/.bashrc:  source <(vault completion bash)
# `vault __complete WORD...` prints the candidates for the last word, one a
# line (a tab before a description), then a directive: ":" (those only),
# ":files", ":dirs" or ":exec N" (word N on is COMMAND of vault exec).
# Labels come from the index only, never from the keychain.
_vault() {
    local cur=${COMP_WORDS[COMP_CWORD]} out line directive
    out=$(command vault __complete "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null) || return 0
    directive=${out##*$'\n'}
    [[ $cur == = ]] && cur=
    COMPREPLY=()
    case $directive in
    :files) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -f -- "$cur") ;;
    :dirs) compopt -o filenames 2>/dev/null; mapfile -t COMPREPLY < <(compgen -d -- "$cur") ;;
    ":exec "*)
        compopt -o filenames 2>/dev/null
        if ((COMP_CWORD == ${directive#:exec } + 1)); then
            mapfile -t COMPREPLY < <(compgen -c -- "$cur")
        else
            mapfile -t COMPREPLY < <(compgen -f -- "$cur")
        fi
        ;;
    *)
        [[ $out == *$'\n'* ]] || return 0
        while IFS= read -r line; do
            COMPREPLY+=("${line%%$'\t'*}")
        done <<<"${out%$'\n'*}"
        ;;
    esac
}
complete -F _vault vault
