"""The filter language's grammar (Lark, LALR): comparisons joined by and/or/not, parentheses.

Keywords are case-insensitive. Strings are double- or single-quoted with backslash escapes;
numbers are decimal; lists are ``[a, b, ...]``. Field names are identifiers, optionally
``attributes.<key>`` for custom attributes.
"""

GRAMMAR = r"""
start: expr

?expr: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: _NOT not_expr -> negation
         | atom
?atom: "(" expr ")"
     | comparison

comparison: FIELD OP value                 -> compare
          | FIELD _IN list                 -> is_in
          | FIELD _NOT _IN list            -> not_in
          | FIELD _CONTAINS STRING         -> contains
          | FIELD _STARTS _WITH STRING     -> starts_with
          | FIELD _IS _NULL                -> is_null
          | FIELD _IS _NOT _NULL           -> is_not_null

list: "[" [value ("," value)*] "]"
?value: STRING
      | NUMBER
      | TRUE
      | FALSE

_OR.2: /or\b/i
_AND.2: /and\b/i
_NOT.2: /not\b/i
_IN.2: /in\b/i
_IS.2: /is\b/i
_NULL.2: /null\b/i
_CONTAINS.2: /contains\b/i
_STARTS.2: /starts\b/i
_WITH.2: /with\b/i
TRUE.2: /true\b/i
FALSE.2: /false\b/i

OP: "==" | "!=" | "<>" | "<=" | ">=" | "=" | "<" | ">"
FIELD: /[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?/
STRING: /"(?:[^"\\\n]|\\.)*"/ | /'(?:[^'\\\n]|\\.)*'/
NUMBER: /-?[0-9]+(\.[0-9]+)?/

%import common.WS
%ignore WS
"""
