// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

/// A Chainlink-style aggregator whose answer the owner sets: emits NewRound and
/// AnswerUpdated and serves the AggregatorV3Interface read path.
contract MockAggregator {
    uint8 public immutable decimals;
    address public immutable owner;
    uint80 public latestRound;
    mapping(uint80 => int256) internal answers;
    mapping(uint80 => uint256) internal timestamps;

    event AnswerUpdated(int256 indexed current, uint256 indexed roundId, uint256 updatedAt);
    event NewRound(uint256 indexed roundId, address indexed startedBy, uint256 startedAt);

    constructor(uint8 decimals_) {
        decimals = decimals_;
        owner = msg.sender;
    }

    /// Starts the next round with `answer`.
    function updateAnswer(int256 answer) external {
        require(msg.sender == owner, "owner");
        uint80 round = latestRound + 1;
        latestRound = round;
        answers[round] = answer;
        timestamps[round] = block.timestamp;
        emit NewRound(round, msg.sender, block.timestamp);
        emit AnswerUpdated(answer, round, block.timestamp);
    }

    function latestAnswer() external view returns (int256) {
        return answers[latestRound];
    }

    function latestRoundData()
        external
        view
        returns (uint80 roundId, int256 answer, uint256 startedAt, uint256 updatedAt, uint80 answeredInRound)
    {
        uint80 round = latestRound;
        return (round, answers[round], timestamps[round], timestamps[round], round);
    }
}
