# Generated from src/fraudcore/cel/opcodes.py (setup.py runs it before cythonize).
# Do not edit: tests/unit/test_opcodes.py fails when this file is stale.

cdef enum:
    OP_CONST = 0  # 1 operand(s); push constants[a]
    OP_LOAD = 1  # 1 operand(s); push slots[a] (a declared variable or a comprehension local)
    OP_STORE = 2  # 1 operand(s); pop into slots[a]
    OP_POP = 3  # 0 operand(s); drop the top of the stack
    OP_JUMP = 4  # 1 operand(s); pc = a
    OP_AND_SHORT = 5  # 1 operand(s); if top is false: jump to a, keeping it (false && x is false)
    OP_AND = 6  # 0 operand(s); pop b, a: false if either is false, else an error if either is one, else true
    OP_OR_SHORT = 7  # 1 operand(s); if top is true: jump to a, keeping it
    OP_OR = 8  # 0 operand(s); pop b, a: true if either is true, else an error if either is one, else false
    OP_COND = 9  # 2 operand(s); pop c: true falls through, false jumps to a, otherwise push the error and jump to b
    OP_NOT_STRICTLY_FALSE = 10  # 0 operand(s); pop v; push false only if v is false (errors count as true)
    OP_ITER_INIT = 11  # 1 operand(s); pop a list or map, push an iterator; on anything else push an error and jump to a
    OP_ITER_NEXT = 12  # 2 operand(s); advance the iterator on top into slots[b]; when exhausted pop it and jump to a
    OP_JUMP_IF_FALSE = 13  # 1 operand(s); pop v; jump to a unless v is true
    OP_NOT = 14  # 0 operand(s); logical not
    OP_NEG = 15  # 0 operand(s); arithmetic negation
    OP_ADD = 16  # 0 operand(s); a + b (numbers natively; strings, bytes, lists, times on the reference path)
    OP_SUB = 17  # 0 operand(s); a - b
    OP_MUL = 18  # 0 operand(s); a * b
    OP_DIV = 19  # 0 operand(s); a / b
    OP_MOD = 20  # 0 operand(s); a % b
    OP_EQ = 21  # 0 operand(s); a == b, CEL heterogeneous equality
    OP_NE = 22  # 0 operand(s); a != b
    OP_LT = 23  # 0 operand(s); a < b, numbers across types
    OP_LE = 24  # 0 operand(s); a <= b
    OP_GT = 25  # 0 operand(s); a > b
    OP_GE = 26  # 0 operand(s); a >= b
    OP_IN = 27  # 0 operand(s); a in b (list or map)
    OP_IN_SET = 28  # 1 operand(s); top in the constant set constants[a]
    OP_CMP_CONST = 29  # 2 operand(s); pop v; push v <cmp a> constants[b], a indexing CMP_OPS
    OP_LOAD_CMP_CONST = 30  # 3 operand(s); push slots[a] <cmp b> constants[c]
    OP_LOAD_CMP_CONST_AND = 31  # 4 operand(s); LOAD_CMP_CONST a b c, then AND_SHORT d: the commonest conjunct, one dispatch
    OP_SIZE = 32  # 0 operand(s); size(v) (strings natively)
    OP_STARTS_WITH = 33  # 0 operand(s); a.startsWith(b)
    OP_ENDS_WITH = 34  # 0 operand(s); a.endsWith(b)
    OP_CONTAINS = 35  # 0 operand(s); a.contains(b)
    OP_MATCHES_CONST = 36  # 1 operand(s); pop s, push whether the compiled regex constants[a] matches in s
    OP_TO_INT = 37  # 0 operand(s); int(v) (numbers natively)
    OP_TO_DOUBLE = 38  # 0 operand(s); double(v) (numbers natively)
    OP_CALL = 39  # 2 operand(s); pop b arguments, call overloads[a]
    OP_DISPATCH = 40  # 2 operand(s); pop b arguments, resolve functions[a] by their runtime types, call it
    OP_INDEX = 41  # 0 operand(s); a[b]
    OP_SELECT = 42  # 1 operand(s); pop a map, push its field constants[a] (the event map natively)
    OP_HAS = 43  # 1 operand(s); pop a map, push whether it has field constants[a]
    OP_HAS_FIELD = 44  # 2 operand(s); push whether the event has declared field slots[a] (named constants[b]): has(event.f)
    OP_MAKE_LIST = 45  # 1 operand(s); pop a values, push a list
    OP_MAKE_MAP = 46  # 1 operand(s); pop 2a values (key, value pairs), push a map
    OP_ERROR = 47  # 1 operand(s); push the error constants[a] (a statically known failure)
    OP_RETURN = 48  # 0 operand(s); stop; the top of the stack is the result

cdef enum:
    CMP_EQ = 0
    CMP_NE = 1
    CMP_LT = 2
    CMP_LE = 3
    CMP_GT = 4
    CMP_GE = 5

OPCODE_TABLE = (('CONST', 1), ('LOAD', 1), ('STORE', 1), ('POP', 0), ('JUMP', 1), ('AND_SHORT', 1), ('AND', 0), ('OR_SHORT', 1), ('OR', 0), ('COND', 2), ('NOT_STRICTLY_FALSE', 0), ('ITER_INIT', 1), ('ITER_NEXT', 2), ('JUMP_IF_FALSE', 1), ('NOT', 0), ('NEG', 0), ('ADD', 0), ('SUB', 0), ('MUL', 0), ('DIV', 0), ('MOD', 0), ('EQ', 0), ('NE', 0), ('LT', 0), ('LE', 0), ('GT', 0), ('GE', 0), ('IN', 0), ('IN_SET', 1), ('CMP_CONST', 2), ('LOAD_CMP_CONST', 3), ('LOAD_CMP_CONST_AND', 4), ('SIZE', 0), ('STARTS_WITH', 0), ('ENDS_WITH', 0), ('CONTAINS', 0), ('MATCHES_CONST', 1), ('TO_INT', 0), ('TO_DOUBLE', 0), ('CALL', 2), ('DISPATCH', 2), ('INDEX', 0), ('SELECT', 1), ('HAS', 1), ('HAS_FIELD', 2), ('MAKE_LIST', 1), ('MAKE_MAP', 1), ('ERROR', 1), ('RETURN', 0))
