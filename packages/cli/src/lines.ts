/**
 * Streaming line splitter with the replay protocol's notion of a line: split on `\n` only, drop
 * one trailing `\r` (CRLF input), exactly as the core's `replayText()` does. (`node:readline`
 * would also break lines at a lone `\r`, which would shift the physical line numbers that
 * protocol error messages must name.)
 */
import { StringDecoder } from 'node:string_decoder';

/**
 * Read `stream` and yield, per chunk read, the complete lines that chunk finished (possibly
 * none). The last line is yielded even without a final newline. `onBytes` receives the running
 * byte count after each chunk.
 */
export async function* readLineBatches(
  stream: NodeJS.ReadableStream,
  onBytes?: (bytesRead: number) => void,
): AsyncGenerator<string[]> {
  const decoder = new StringDecoder('utf8');
  let rest = '';
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<string | Buffer>) {
    let text: string;
    if (typeof chunk === 'string') {
      text = chunk;
      bytes += Buffer.byteLength(chunk);
    } else {
      text = decoder.write(chunk);
      bytes += chunk.length;
    }
    onBytes?.(bytes);
    const parts = (rest + text).split('\n');
    rest = parts.pop() ?? '';
    if (parts.length > 0) yield parts.map(stripCr);
  }
  rest += decoder.end();
  if (rest !== '') yield [stripCr(rest)];
}

function stripCr(line: string): string {
  return line.endsWith('\r') ? line.slice(0, -1) : line;
}
