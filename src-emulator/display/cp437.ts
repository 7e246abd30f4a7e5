/**
 * IBM code page 437 to Unicode, as the VGA text screen shows it (control codes are the pictographs
 * the character generator draws; 0 is shown as a space so screens read as text).
 */
const LOW = ' ☺☻♥♦♣♠•◘○◙♂♀♪♫☼►◄↕‼¶§▬↨↑↓→←∟↔▲▼';
const HIGH =
  'ÇüéâäàåçêëèïîìÄÅÉæÆôöòûùÿÖÜ¢£¥₧ƒáíóúñÑªº¿⌐¬½¼¡«»░▒▓│┤╡╢╖╕╣║╗╝╜╛┐└┴┬├─┼╞╟╚╔╩╦╠═╬╧╨╤╥╙╘╒╓╫╪┘┌█▄▌▐▀' +
  'αßΓπΣσµτΦΘΩδ∞φε∩≡±≥≤⌠⌡÷≈°∙·√ⁿ²■ ';

/** CP437_TO_UNICODE[byte] is the one-character string for that code. */
export const CP437_TO_UNICODE: readonly string[] = (() => {
  const t: string[] = [...LOW];
  for (let c = 0x20; c < 0x7f; c++) t.push(String.fromCharCode(c));
  t.push('⌂', ...HIGH);
  if (t.length !== 256) throw new Error('cp437 table size');
  return t;
})();

/** Decodes CP437 bytes to a string. */
export function decodeCp437(bytes: ArrayLike<number>): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += CP437_TO_UNICODE[bytes[i] & 0xff];
  return s;
}
