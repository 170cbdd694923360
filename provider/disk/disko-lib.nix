# The part of nixpkgs' lib that disko layouts commonly call, in pure Nix (there is no
# nixpkgs here), and the resolution of mkIf / mkMerge / mkDefault / mkForce that the module
# system would do. Semantics follow nixpkgs lib (lib/attrsets.nix, lib/lists.nix,
# lib/strings.nix, lib/modules.nix); only what layouts use.
let
  b = builtins;
  mkOverride = priority: content: { _type = "override"; inherit priority content; };
  mkIf = condition: content: { _type = "if"; inherit condition content; };
  mkMerge = contents: { _type = "merge"; inherit contents; };
  optionalAttrs = cond: as: if cond then as else { };
  optional = cond: x: if cond then [ x ] else [ ];
  optionals = cond: xs: if cond then xs else [ ];
  optionalString = cond: s: if cond then s else "";
  genAttrs = names: f: b.listToAttrs (map (n: { name = n; value = f n; }) names);
  nameValuePair = name: value: { inherit name value; };
  mapAttrs' = f: set: b.listToAttrs (map (attr: f attr set.${attr}) (b.attrNames set));
  mapAttrsToList = f: attrs: map (name: f name attrs.${name}) (b.attrNames attrs);
  filterAttrs = pred: set: b.removeAttrs set (b.filter (name: !pred name set.${name}) (b.attrNames set));
  foldl' = b.foldl';
  foldr = op: nul: list: let len = b.length list; fold' = n: if n == len then nul else op (b.elemAt list n) (fold' (n + 1)); in fold' 0;
  recursiveUpdate = lhs: rhs:
    b.zipAttrsWith (n: vs: if b.length vs == 1 then b.head vs
      else if b.isAttrs (b.elemAt vs 0) && b.isAttrs (b.elemAt vs 1) && !(vs ? _type) then recursiveUpdate (b.elemAt vs 0) (b.elemAt vs 1)
      else b.elemAt vs 1) [ lhs rhs ];
  concatMapStringsSep = sep: f: list: b.concatStringsSep sep (map f list);
  concatMapStrings = f: list: b.concatStringsSep "" (map f list);
  imap0 = f: list: b.genList (n: f n (b.elemAt list n)) (b.length list);
  imap1 = f: list: b.genList (n: f (n + 1) (b.elemAt list n)) (b.length list);
  flatten = x: if b.isList x then b.concatMap flatten x else [ x ];
  range = first: last: if first > last then [ ] else b.genList (n: first + n) (last - first + 1);
  hasPrefix = pref: str: b.substring 0 (b.stringLength pref) str == pref;
  hasSuffix = suffix: content: let lc = b.stringLength content; ls = b.stringLength suffix; in lc >= ls && b.substring (lc - ls) lc content == suffix;
  hasInfix = infix: content: b.match ".*${escapeRegex infix}.*" "${content}" != null;
  escapeRegex = b.replaceStrings (b.map (c: c) [ "\\" "[" "{" "(" ")" "^" "$" "?" "*" "+" "|" "." ]) (b.map (c: "\\${c}") [ "\\" "[" "{" "(" ")" "^" "$" "?" "*" "+" "|" "." ]);
  removePrefix = prefix: str: if hasPrefix prefix str then b.substring (b.stringLength prefix) (-1) str else str;
  removeSuffix = suffix: str: if hasSuffix suffix str then b.substring 0 (b.stringLength str - b.stringLength suffix) str else str;
  splitString = sep: s: b.filter b.isString (b.split (escapeRegex sep) s);
  toUpper = b.replaceStrings (b.genList (n: b.substring n 1 "abcdefghijklmnopqrstuvwxyz") 26) (b.genList (n: b.substring n 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") 26);
  toLower = b.replaceStrings (b.genList (n: b.substring n 1 "ABCDEFGHIJKLMNOPQRSTUVWXYZ") 26) (b.genList (n: b.substring n 1 "abcdefghijklmnopqrstuvwxyz") 26);
  unique = foldl' (acc: e: if b.elem e acc then acc else acc ++ [ e ]) [ ];
  last = list: b.elemAt list (b.length list - 1);
  forEach = xs: f: map f xs;
  zipListsWith = f: fst: snd: b.genList (n: f (b.elemAt fst n) (b.elemAt snd n)) (if b.length fst < b.length snd then b.length fst else b.length snd);
  attrByPath = attrPath: default: set:
    if attrPath == [ ] then set
    else if b.isAttrs set && set ? ${b.head attrPath} then attrByPath (b.tail attrPath) default set.${b.head attrPath}
    else default;
  escapeShellArg = arg: "'${b.replaceStrings [ "'" ] [ "'\\''" ] (b.toString arg)}'";
  fileContents = file: removeSuffix "\n" (b.readFile file);
  mkEnableOption = name: { _type = "option"; default = false; };
  mkOption = attrs: attrs // { _type = "option"; };
  strings = { inherit concatMapStringsSep concatMapStrings hasPrefix hasSuffix hasInfix removePrefix removeSuffix splitString toUpper toLower optionalString escapeShellArg fileContents; inherit (b) concatStringsSep replaceStrings stringLength substring; };
  lists = { inherit optional optionals imap0 imap1 flatten range unique last forEach zipListsWith foldr foldl'; inherit (b) elem filter head tail length concatLists concatMap elemAt genList; };
  attrsets = { inherit optionalAttrs genAttrs nameValuePair mapAttrs' mapAttrsToList filterAttrs recursiveUpdate attrByPath; inherit (b) attrNames attrValues listToAttrs mapAttrs hasAttr getAttr removeAttrs; };
in
strings // lists // attrsets // {
  inherit strings lists attrsets mkOverride mkIf mkMerge mkOption mkEnableOption;
  inherit (b) toString toJSON fromJSON readFile pathExists isAttrs isList isString isBool isInt isFunction typeOf trace seq deepSeq throw abort;
  mkDefault = mkOverride 1000;
  mkForce = mkOverride 50;
  mkOptionDefault = mkOverride 1500;
  mkBefore = x: x;
  mkAfter = x: x;
  trivial = { id = x: x; const = x: _: x; };
  id = x: x;
  const = x: _: x;
  min = x: y: if x < y then x else y;
  max = x: y: if x > y then x else y;
  mod = base: int: base - (int * (b.div base int));
  toInt = s: b.fromJSON s;
  versionAtLeast = v1: v2: b.compareVersions v1 v2 >= 0;
  mkRenamedOptionModule = _: _: { };
  types = { };

  # What the module system does with one definition: drop mkIf false, merge mkMerge, strip
  # priorities (a layout file is the only definition of its devices).
  resolveDefinitions =
    let
      present = v: !(b.isAttrs v && (v._type or null) == "if" && !v.condition);
      resolve = v:
        if b.isAttrs v then
          (if (v._type or null) == "override" then resolve v.content
          else if (v._type or null) == "if" then resolve v.content
          else if (v._type or null) == "merge" then foldl' (acc: c: recursiveUpdate acc (resolve c)) { } (b.filter present v.contents)
          else b.mapAttrs (_: resolve) (filterAttrs (_: present) v))
        else if b.isList v then map resolve (b.filter present v)
        else v;
    in
    resolve;
}
