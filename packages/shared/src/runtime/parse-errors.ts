/**
 * What went wrong parsing a document, without quoting the document. JSON.parse's messages quote
 * the input around the error (`Unexpected token 'M', "MIGHAgEAMB"... is not valid JSON`) and the
 * yaml package's quote whole lines, and a document may hold a private key: an error message must
 * never carry a piece of one into an answer or a log line. This keeps the kind and the place.
 */
export function describeParseError(err: unknown): string {
  const e = err as { message?: unknown; linePos?: Array<{ line: number; col: number }> };
  const message = typeof e?.message === 'string' ? e.message : '';
  const at = e?.linePos?.[0];
  if (at !== undefined) {
    // yaml: "<what> at line L, column C:\n\n<the lines>\n^": the part before " at line" names no input.
    const what = message.split(' at line ')[0]!.split('\n')[0]!;
    return `${what} (line ${at.line}, column ${at.col})`;
  }
  const position = /at position (\d+)/.exec(message)?.[1];
  // JSON: only V8's wordings that quote nothing are kept whole.
  if (
    /^(Unexpected end of JSON input|Bad control character in string literal|Bad escaped character|Unterminated string|Expected [^"]*? after|No number after minus sign|Exponent part is missing|Unexpected non-whitespace character after JSON)/.test(
      message,
    ) &&
    !message.includes('"')
  ) {
    return message;
  }
  return position !== undefined ? `syntax error at position ${position}` : 'syntax error';
}
